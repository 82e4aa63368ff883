# Host dependencies of the library. Each comes from the system (Debian packages named in
# the README); nothing is downloaded at configure time.
set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
find_path(MLPX_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas REQUIRED
          DOC "Directory holding OpenBLAS's cblas.h (Debian: libopenblas-dev)")
find_package(ZLIB REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
