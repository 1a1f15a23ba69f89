"""gymnasium registration for vgrp (filled in by its issue)."""
