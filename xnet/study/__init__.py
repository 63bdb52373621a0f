"""Studies: the study file, planning and running its variants (one process or MPI), the summary."""

from xnet.study.file import Study, Variant, load_study, run_folder_name
from xnet.study.runner import StudyInterrupted, finished_metrics, run_study
from xnet.study.summary import summarize

__all__ = [
    "Study",
    "StudyInterrupted",
    "Variant",
    "finished_metrics",
    "load_study",
    "run_folder_name",
    "run_study",
    "summarize",
]
