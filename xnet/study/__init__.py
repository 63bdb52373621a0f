"""Studies: the study file, planning and running its variants (one process or MPI), the summary."""
