"""General Points / 24-game (``mmsft/GeneralPoints-v0``): cards and value rules (``cards``), the exact solver
(``solver``), the formula checker (``formula``), the paper's reward table (``reward``), card images (``render``)
and the gymnasium env (``env``). Kept import-free so that registering the env id stays cheap."""
