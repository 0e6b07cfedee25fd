# cmake -DNPM=<npm> -DUI_DIR=<ui/> -DDIST=<out dir> -DOUT=<file.cpp> -P build_ui.cmake
#
# Builds the web UI with npm and embeds the result (embed_assets.cmake). Runs
# `npm ci` first when ui/node_modules is missing or older than the lock file
# (scripts/setup.sh normally did it already). Any npm failure fails the build:
# a binary must not silently ship without its UI when npm is there.
cmake_minimum_required(VERSION 3.20)

set(marker ${UI_DIR}/node_modules/.package-lock.json)
if(NOT EXISTS ${marker} OR ${UI_DIR}/package-lock.json IS_NEWER_THAN ${marker})
  message(STATUS "ui: npm ci in ${UI_DIR}")
  execute_process(COMMAND ${NPM} ci --prefer-offline --no-audit --no-fund --loglevel=error
                  WORKING_DIRECTORY ${UI_DIR} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "ui: 'npm ci' failed in ${UI_DIR} (exit ${rc}); configure with -DOUTRIDER_UI=OFF to build without the web UI")
  endif()
endif()

execute_process(COMMAND ${NPM} run --silent build -- --outDir ${DIST} --emptyOutDir --logLevel warn
                WORKING_DIRECTORY ${UI_DIR} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ui: 'npm run build' failed in ${UI_DIR} (exit ${rc})")
endif()
if(NOT EXISTS ${DIST}/index.html)
  message(FATAL_ERROR "ui: the build wrote no ${DIST}/index.html")
endif()

include(${CMAKE_CURRENT_LIST_DIR}/embed_assets.cmake)
