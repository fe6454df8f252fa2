# A real browser renders a report: headless Chromium loads report.html from disk, its DOM must hold the
# parsed charts and headings, and its screenshot must be a real picture (not a blank page).
# cmake -DCHROMIUM=<path> -DREPORT=<report.html> -DWORK=<folder> "-DEXPECT=regex;..." [-DMIN_SVG=n] -P check_report_render.cmake
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
set(flags --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir=${WORK}/profile --window-size=1100,3000)
execute_process(COMMAND ${CHROMIUM} ${flags} --dump-dom "file://${REPORT}"
                OUTPUT_VARIABLE dom ERROR_VARIABLE err RESULT_VARIABLE rc TIMEOUT 90)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "chromium --dump-dom ${REPORT} failed (${rc}): ${err}")
endif()
foreach(pattern IN LISTS EXPECT)
  if(NOT dom MATCHES "${pattern}")
    message(FATAL_ERROR "the DOM Chromium built from ${REPORT} does not match: ${pattern}")
  endif()
endforeach()
string(REGEX MATCHALL "<svg" svgs "${dom}")
list(LENGTH svgs svg_count)
if(DEFINED MIN_SVG AND svg_count LESS MIN_SVG)
  message(FATAL_ERROR "Chromium's DOM of ${REPORT} holds ${svg_count} <svg> elements, expected at least ${MIN_SVG}")
endif()
execute_process(COMMAND ${CHROMIUM} ${flags} --screenshot=${WORK}/report.png "file://${REPORT}"
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc TIMEOUT 90)
if(NOT rc EQUAL 0 OR NOT EXISTS "${WORK}/report.png")
  message(FATAL_ERROR "chromium --screenshot of ${REPORT} failed (${rc}): ${err}")
endif()
file(SIZE "${WORK}/report.png" png_bytes)
file(READ "${WORK}/report.png" png_head LIMIT 8 HEX)
if(NOT png_head STREQUAL "89504e470d0a1a0a" OR png_bytes LESS 50000)   # a blank 1100x3000 page compresses to a few KB
  message(FATAL_ERROR "the screenshot of ${REPORT} is not a rendered page (${png_bytes} bytes, header ${png_head})")
endif()
message("Chromium rendered ${REPORT}: ${svg_count} <svg> elements, a ${png_bytes}-byte screenshot")
