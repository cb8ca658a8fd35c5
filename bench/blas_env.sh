# Sourced by the bench scripts: `blas_env COMMAND...` runs COMMAND with the OpenBLAS environment the
# comparison needs, the same for secateur and PyTorch. By default OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE are unset (OpenBLAS detects the CPU itself; see bench/README.md).
# BENCH_OPENBLAS_CORETYPE=Prescott sets OPENBLAS_CORETYPE for both sides instead: what a machine
# whose CPU OpenBLAS does not recognise gets (secateur then switches its OpenBLAS to the core cpuid
# supports, docs/HACKING.md; PyTorch keeps what it is given).
blas_env() {
  if [[ -n ${BENCH_OPENBLAS_CORETYPE:-} ]]; then
    env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE="$BENCH_OPENBLAS_CORETYPE" "$@"
  else
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"
  fi
}
