"""Multi-stage runs: a list of training recipes run in order, each from the previous stage's model, with named
evaluators scored after every stage into a stage × eval-set matrix (``matrix.json``, ``matrix.md``, ``matrix.png``).

Python::

    from mmsft.pipeline import run_pipeline
    result = run_pipeline("pipeline.yaml", ["output_dir=runs/p2"])
    result.matrix.main("sft", "heldout")

Command line: ``mmsft run pipeline.yaml key=value ...``. The file format is documented in
:mod:`mmsft.pipeline.spec` and docs/pipeline.md.
"""

from mmsft.pipeline.matrix import Matrix
from mmsft.pipeline.runner import Pipeline, PipelineResult, run_pipeline, stage_model
from mmsft.pipeline.spec import PipelineSpec, load_pipeline
from mmsft.pipeline.state import PipelineState, PipelineStateError

__all__ = ["Matrix", "Pipeline", "PipelineResult", "PipelineSpec", "PipelineState", "PipelineStateError",
           "load_pipeline", "run_pipeline", "stage_model"]
