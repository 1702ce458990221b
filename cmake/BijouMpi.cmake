# MPI for bijou/distributed (data-parallel training over processes): optional. BIJOU_WITH_MPI = AUTO
# (the default: on when find_package(MPI) finds a C++ MPI, e.g. Debian's libopenmpi-dev), ON (MPI
# required) or OFF. Sets BIJOU_MPI (ON/OFF) and, when ON, defines the INTERFACE target bijou::distributed
# (bijou::bijou + MPI::MPI_CXX) that a program using <bijou/distributed/mpi.hpp> links. Without MPI
# bijou builds and works as before: nothing else includes those headers.
set(BIJOU_WITH_MPI AUTO CACHE STRING "bijou::distributed (MPI): AUTO (when MPI is found), ON or OFF")
set_property(CACHE BIJOU_WITH_MPI PROPERTY STRINGS OFF ON AUTO)
set(BIJOU_MPI OFF)
if(BIJOU_WITH_MPI STREQUAL "ON")
  find_package(MPI REQUIRED COMPONENTS CXX)
elseif(BIJOU_WITH_MPI STREQUAL "AUTO")
  find_package(MPI QUIET COMPONENTS CXX)
endif()
if(MPI_CXX_FOUND AND NOT BIJOU_WITH_MPI STREQUAL "OFF")
  set(BIJOU_MPI ON)
  add_library(bijou_distributed INTERFACE)
  add_library(bijou::distributed ALIAS bijou_distributed)
  target_link_libraries(bijou_distributed INTERFACE bijou MPI::MPI_CXX)
  set_target_properties(bijou_distributed PROPERTIES EXPORT_NAME distributed)
  # How bijou's tests launch N processes: BIJOU_MPIEXEC then N, in the environment BIJOU_MPIEXEC_ENV
  # (--oversubscribe: more processes than cores is fine for tests; CI runs as root, which OpenMPI
  # refuses unless told otherwise; one OpenMP thread per process).
  set(BIJOU_MPIEXEC ${MPIEXEC_EXECUTABLE} --oversubscribe ${MPIEXEC_NUMPROC_FLAG})
  set(BIJOU_MPIEXEC_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1)
  message(STATUS "bijou: MPI ${MPI_CXX_VERSION} found: bijou::distributed, its tests (${MPIEXEC_EXECUTABLE}) and "
                 "the examples' mpirun support")
else()
  message(STATUS "bijou: MPI not found (BIJOU_WITH_MPI=${BIJOU_WITH_MPI}): no bijou::distributed; its tests report skipped")
endif()
