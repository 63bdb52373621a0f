"""Training and studies on several processes through MPI (mpi4py), imported only under mpiexec.

world.py finds the MPI world and makes every collective with a timeout; data_parallel.py is a
Trainer's part as one rank of a data-parallel run (gradients.py: the flat gradient buffer;
sync_batchnorm.py: batch norm over the global batch; agree.py: every rank set up without error
and runs the same thing). It sits below xnet/train: `xnet compare` under mpiexec is
xnet/study/mpi.py. Nothing here imports mpi4py until `current_world()` finds more than one process.
"""
