# Module rules. Every library under src/ is declared with outrider_module(), which
# checks its dependencies against the table below, so a link that breaks the
# architecture fails at configure time. docs/ARCHITECTURE.md states the same table.
#
# OUTRIDER_ALLOWED_<module>: the outrider modules <module> may link (directly).
set(OUTRIDER_ALLOWED_base "")
set(OUTRIDER_ALLOWED_io base)
set(OUTRIDER_ALLOWED_config base)
set(OUTRIDER_ALLOWED_metrics base)
set(OUTRIDER_ALLOWED_http base io)
set(OUTRIDER_ALLOWED_storage base io)
set(OUTRIDER_ALLOWED_timing base io)
set(OUTRIDER_ALLOWED_broker_client base io)
set(OUTRIDER_ALLOWED_broker base io storage timing config http metrics broker_client)
set(OUTRIDER_ALLOWED_backends base io broker broker_client config)
set(OUTRIDER_ALLOWED_tracing base io http storage config metrics)
set(OUTRIDER_ALLOWED_analysis base io http storage config metrics tracing)
set(OUTRIDER_ALLOWED_ambassador base io http config metrics)
set(OUTRIDER_ALLOWED_sidecar base io http config metrics backends tracing ambassador)
set(OUTRIDER_ALLOWED_ui_assets base io http)
set(OUTRIDER_ALLOWED_dev base io config http broker_client)
set(OUTRIDER_ALLOWED_cli base io config metrics http storage timing broker broker_client backends tracing analysis ambassador sidecar ui_assets dev)
set(OUTRIDER_ALLOWED_testing base io http storage timing broker broker_client backends config)

set(OUTRIDER_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
    -Wimplicit-fallthrough -Wno-missing-field-initializers)

function(outrider_target_defaults target)
  target_compile_options(${target} PRIVATE ${OUTRIDER_WARNINGS})
  if(OUTRIDER_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(OUTRIDER_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# outrider_module(NAME <module> [DEPS <outrider modules>] [LIBS <third-party>] [PUBLIC_LIBS ...])
# Creates library target outrider_<module> (include root src/) from every .cpp in
# the module's folder and its detail/ folder, except *_test.cpp and *_fuzz.cpp.
# (and main.cpp, which a module turns into an executable itself).
# If any *_test.cpp exist they form one test executable <module>_test (label unit)
# linked with the module, and the shared test doubles (outrider_testing) when that
# module is not the one being built.
function(outrider_module)
  cmake_parse_arguments(M "" "NAME" "DEPS;LIBS;PUBLIC_LIBS;TEST_LIBS" ${ARGN})
  file(GLOB M_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp ${CMAKE_CURRENT_SOURCE_DIR}/detail/*.cpp)
  file(GLOB M_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/detail/*_test.cpp)
  list(FILTER M_SOURCES EXCLUDE REGEX "(_test|_fuzz|/main)\\.cpp$")
  if(NOT DEFINED OUTRIDER_ALLOWED_${M_NAME})
    message(FATAL_ERROR "module '${M_NAME}' is not in the table in cmake/outrider_module.cmake")
  endif()
  foreach(dep IN LISTS M_DEPS)
    if(NOT dep IN_LIST OUTRIDER_ALLOWED_${M_NAME})
      message(FATAL_ERROR "module '${M_NAME}' may not depend on '${dep}' (see docs/ARCHITECTURE.md)")
    endif()
  endforeach()
  add_library(outrider_${M_NAME} STATIC ${M_SOURCES})
  target_include_directories(outrider_${M_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  list(TRANSFORM M_DEPS PREPEND outrider_ OUTPUT_VARIABLE dep_targets)
  target_link_libraries(outrider_${M_NAME} PUBLIC ${dep_targets} ${M_PUBLIC_LIBS} PRIVATE ${M_LIBS})
  outrider_target_defaults(outrider_${M_NAME})
  if(M_TESTS AND OUTRIDER_BUILD_TESTS)
    outrider_test(NAME ${M_NAME}_test LABEL unit SOURCES ${M_TESTS} LIBS outrider_${M_NAME} ${M_TEST_LIBS})
    target_compile_definitions(${M_NAME}_test PRIVATE OUTRIDER_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  endif()
endfunction()

# outrider_test(NAME <exe> SOURCES ... LIBS ... LABEL unit|integration|slow [TIMEOUT s])
# One GoogleTest executable; each test case becomes a CTest test with the label.
function(outrider_test)
  cmake_parse_arguments(T "" "NAME;LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT OUTRIDER_BUILD_TESTS)
    return()
  endif()
  if(NOT T_LABEL)
    set(T_LABEL unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  outrider_target_defaults(${T_NAME})
  gtest_discover_tests(${T_NAME}
    PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT}
    DISCOVERY_TIMEOUT 60)
endfunction()
