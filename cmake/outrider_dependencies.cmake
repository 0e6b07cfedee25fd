# Third-party dependencies, all from Debian 12 packages (scripts/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED CONFIG COMPONENTS json url)
find_package(fmt REQUIRED CONFIG)
find_package(spdlog REQUIRED CONFIG)
find_package(yaml-cpp REQUIRED CONFIG)
find_package(CLI11 REQUIRED CONFIG)
find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
if(OUTRIDER_BUILD_TESTS)
  find_package(GTest REQUIRED CONFIG)
endif()
if(OUTRIDER_BUILD_BENCH)
  find_package(benchmark REQUIRED CONFIG)
endif()

# Asio is used standalone-from-Boost, header-only; one definition set for every target.
add_library(outrider_asio INTERFACE)
target_link_libraries(outrider_asio INTERFACE Boost::headers Threads::Threads)
target_compile_definitions(outrider_asio INTERFACE
  BOOST_ASIO_NO_DEPRECATED
  BOOST_ASIO_DISABLE_BOOST_COROUTINE
  BOOST_BEAST_USE_STD_STRING_VIEW)
