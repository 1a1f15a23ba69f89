"""vgrp environments."""
