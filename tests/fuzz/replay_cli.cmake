# The corpus through the unmix-nmf program (cmake -P, run by the ctests
# fuzz_replay_cli_npy and fuzz_replay_cli_mtx): every input of
# tests/fuzz/corpus/KIND must end with a result (exit 0) or a one-line error
# for bad input (exit 2) — never a crash, a sanitizer report (exit 1 under
# the asan-ubsan preset) or a hang.
#
#   cmake -DEXE=unmix-nmf -DCORPUS=tests/fuzz/corpus -DKIND=npy -DWORK=folder -P replay_cli.cmake
foreach(var EXE CORPUS KIND WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "replay_cli.cmake: -D${var}=... is missing")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/mpi")
# OpenMPI's session files of these singleton runs go here, apart from any
# other MPI program running at the same time.
set(ENV{OMPI_MCA_orte_tmpdir_base} "${WORK}/mpi")
set(count 0)
set(failures "")
foreach(kind ${KIND})
  file(GLOB inputs LIST_DIRECTORIES false "${CORPUS}/${kind}/*")
  list(SORT inputs)
  foreach(input IN LISTS inputs)
    get_filename_component(name "${input}" NAME)
    set(copy "${WORK}/${name}.${kind}")
    configure_file("${input}" "${copy}" COPYONLY)
    execute_process(
      COMMAND "${EXE}" -k 2 --max-iter 3 --quiet -o "${WORK}/out" "${copy}"
      RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
    math(EXPR count "${count} + 1")
    if(NOT (rc STREQUAL "0" OR rc STREQUAL "2"))
      string(APPEND failures "\n${kind}/${name}: exit ${rc}\n${err}")
    elseif(rc STREQUAL "2" AND NOT err MATCHES "(^|\n)unmix-nmf: error: ")
      string(APPEND failures "\n${kind}/${name}: exit 2 without an error line:\n${err}")
    endif()
    file(REMOVE "${copy}")
  endforeach()
endforeach()
file(REMOVE_RECURSE "${WORK}")
if(failures)
  message(FATAL_ERROR "unmix-nmf failed on corpus inputs:${failures}")
endif()
message(STATUS "unmix-nmf: ${count} corpus inputs, each a result or a clear error")
