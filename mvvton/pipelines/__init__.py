from mvvton.pipelines.pipeline_mvvton import MVVTONPipeline
from mvvton.pipelines.pipeline_output import MVVTONPipelineOutput

__all__ = ["MVVTONPipeline", "MVVTONPipelineOutput"]
