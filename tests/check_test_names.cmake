# Fails the build when a Catch2 test name would not run as one CTest test: ctest
# splits a name holding ';' into entries that match nothing (and pass). Run after each
# test executable is linked: cmake -DTEST_EXECUTABLE=... -P check_test_names.cmake
execute_process(
  COMMAND "${TEST_EXECUTABLE}" --list-test-names-only
  OUTPUT_VARIABLE names
  RESULT_VARIABLE result)
if(result LESS 0)
  message(FATAL_ERROR "cannot list the tests of ${TEST_EXECUTABLE}: ${result}")
endif()
string(FIND "${names}" ";" semicolon)
if(NOT semicolon EQUAL -1)
  string(REGEX MATCHALL "[^\n]*;[^\n]*" bad "${names}")
  message(FATAL_ERROR "test names with ';' in ${TEST_EXECUTABLE} (ctest would split them "
                      "into entries that run nothing; use ',' or words): ${bad}")
endif()
