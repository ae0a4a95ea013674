include(GoogleTest)

# parley_add_library(NAME SOURCES... DEPS...): one static library per component folder.
function(parley_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# Sanitizer builds run several times slower; a test's TIMEOUT is a hang guard, not a
# performance bar, so it stretches with them.
if(PARLEY_SANITIZE)
  set(PARLEY_TIMEOUT_FACTOR 3)
else()
  set(PARLEY_TIMEOUT_FACTOR 1)
endif()

# parley_add_test(NAME SOURCES... DEPS... LABELS... [TIMEOUT s] [SPLIT]): a GoogleTest binary
# registered with CTest. SPLIT registers each test case as its own CTest test (discovered
# when CTest runs), so that long suites run in parallel and each case has its own timeout.
function(parley_add_test name)
  cmake_parse_arguments(ARG "SPLIT" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  math(EXPR timeout "${ARG_TIMEOUT} * ${PARLEY_TIMEOUT_FACTOR}")
  set(env "PARLEYD_BIN=${PROJECT_BINARY_DIR}/src/parleyd/parleyd;PARLEY_CLI_BIN=${PROJECT_BINARY_DIR}/src/cli/parley")
  if(ARG_SPLIT)
    gtest_discover_tests(${name}
      TEST_PREFIX "${name}."
      DISCOVERY_MODE PRE_TEST
      PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${timeout} ENVIRONMENT "${env}")
  else()
    add_test(NAME ${name} COMMAND ${name})
    set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${timeout}
      ENVIRONMENT "${env}")
  endif()
endfunction()
