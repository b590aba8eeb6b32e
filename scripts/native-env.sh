# Sourced by run.sh and scripts/bench.sh (and mirrored in docker/Dockerfile*): how the native side of PyTorch runs
# best on a small shared CPU machine. Each setting keeps a value already in the environment.
#
# OpenMP threads sleep instead of spinning while they wait (much faster on a shared or busy machine).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
# glibc malloc keeps freed memory for reuse instead of returning it to the kernel after every large tensor: a
# Jacobian pass allocates and frees tens of MB of 1-6 MB tensors, and with the defaults (mmap above 128 kB, trim
# above 128 kB, thresholds that adapt only slowly) each one came back as fresh zeroed pages (~10,000 page faults
# per 8-token pass on the default model, about a sixth of its CPU time). The price: up to a few hundred MB of
# freed memory stay mapped in the process.
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-67108864}
export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-268435456}
export MALLOC_TOP_PAD_=${MALLOC_TOP_PAD_:-67108864}
