# Included by the top-level CMakeLists.txt before the libraries are added. With
# -DSTEWARD_FUZZ=ON and clang, everything is compiled with coverage for libFuzzer
# (-fsanitize=fuzzer-no-link) and with ASan+UBSan, so the fuzzers in fuzz/ see and
# check the library code they drive; fuzz/CMakeLists.txt then adds the fuzzers.
option(STEWARD_FUZZ "Build the libFuzzer targets in fuzz/ (clang only)" OFF)
set(STEWARD_FUZZ_ENABLED OFF)
if(STEWARD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(WARNING "STEWARD_FUZZ needs clang (-DCMAKE_CXX_COMPILER=clang++); "
                    "${CMAKE_CXX_COMPILER_ID} builds no fuzzers")
  elseif(STEWARD_SANITIZE AND NOT STEWARD_SANITIZE STREQUAL "address,undefined")
    message(FATAL_ERROR "STEWARD_FUZZ builds with address,undefined; "
                        "it cannot be combined with STEWARD_SANITIZE=${STEWARD_SANITIZE}")
  else()
    set(STEWARD_FUZZ_ENABLED ON)
    # UBSan findings abort, so libFuzzer reports them as crashes.
    add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
                        -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
    enable_testing()  # the fuzz tests need CTest even with STEWARD_BUILD_TESTS=OFF
  endif()
endif()
