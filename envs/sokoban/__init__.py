"""Sokoban (``mmsft/Sokoban-v0``): bitmask levels (``level``), reverse-play generator (``generator``), BFS and A*
move-optimal solvers (``solver``), text/image renderers with cached sprites (``render``), the transition function
and reward presets (``core``), the gymnasium env (``env``), the numpy batched env (``vector``) and a Boxoban file
reader (``boxoban``). Kept import-free so that registering the env id stays cheap."""
