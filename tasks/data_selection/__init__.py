"""The data-selection study (``mmsft study data-selection``): random vs S3FT, GRAPE, UDS, Q-Tuning and STAT
selection at the same SFT budget on a toy task with a held-out split."""
