# Run at install time (packaging/CMakeLists.txt): records the Debian packages that the installed
# program, runtime and plugins need, one name a line, in
# <prefix>/share/nemokit/containers/debian-packages.txt. containers/Dockerfile.base apt-installs
# them, so `nemokit build nemokit-base` makes an image from the installed tree alone.
#
# In: NEMOKIT_PREFIX (the installed tree, DESTDIR included), NEMOKIT_WORK_DIR (a scratch folder).
# dpkg-shlibdeps maps each NEEDED library to the package that ships it (as cpack does for the .deb's
# Depends). The CUDA module (libnemokit_runtime_cuda.so) is left out: it is opened only where a CUDA
# runtime exists, and its CUDA libraries are the CUDA base image's, never Debian's.
# `cmake --install --prefix DIR` keeps a relative DIR relative; dpkg-shlibdeps runs elsewhere.
get_filename_component(NEMOKIT_PREFIX "${NEMOKIT_PREFIX}" ABSOLUTE)
set(list_file "${NEMOKIT_PREFIX}/share/nemokit/containers/debian-packages.txt")
set(header "# The Debian packages nemokit's shared libraries need (dpkg-shlibdeps at install time).\n")

file(GLOB elf_files "${NEMOKIT_PREFIX}/bin/nemokit" "${NEMOKIT_PREFIX}/lib/libnemokit_runtime.so.*"
  "${NEMOKIT_PREFIX}/lib/nemokit/plugins/*.so")
list(FILTER elf_files EXCLUDE REGEX "_cuda\\.so$")
set(files)
foreach(f IN LISTS elf_files)
  if(NOT IS_SYMLINK "${f}")
    list(APPEND files "${f}")
  endif()
endforeach()

find_program(DPKG_SHLIBDEPS dpkg-shlibdeps)
set(packages)
if(NOT DPKG_SHLIBDEPS)
  message(WARNING "dpkg-shlibdeps not found (not a Debian system?): ${list_file} lists no packages; "
    "add the packages of the libraries `ldd ${NEMOKIT_PREFIX}/bin/nemokit` names before building nemokit-base")
  set(header "${header}# dpkg-shlibdeps was not found when nemokit was installed: none are listed.\n")
elseif(files)
  # dpkg-shlibdeps reads debian/control from its working folder: one binary stanza is enough.
  file(MAKE_DIRECTORY "${NEMOKIT_WORK_DIR}/debian")
  file(WRITE "${NEMOKIT_WORK_DIR}/debian/control" "Source: nemokit\n\nPackage: nemokit\nArchitecture: any\n")
  # --ignore-missing-info: nemokit's own runtime (found through -l) belongs to no package.
  execute_process(COMMAND "${DPKG_SHLIBDEPS}" -O --ignore-missing-info "-l${NEMOKIT_PREFIX}/lib" ${files}
    WORKING_DIRECTORY "${NEMOKIT_WORK_DIR}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT out MATCHES "shlibs:Depends=([^\n]*)")
    message(FATAL_ERROR "dpkg-shlibdeps failed for ${list_file} (exit ${rc}):\n${err}")
  endif()
  # "libc6 (>= 2.34), libfoo1 | libfoo2, ..." -> libc6 libfoo1: apt takes the first alternative too.
  string(REPLACE "," ";" depends "${CMAKE_MATCH_1}")
  foreach(d IN LISTS depends)
    string(REGEX REPLACE "\\|.*" "" d "${d}")
    string(REGEX REPLACE "\\(.*\\)" "" d "${d}")
    string(STRIP "${d}" d)
    if(d)
      list(APPEND packages "${d}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES packages)
  list(SORT packages)
endif()

string(REPLACE ";" "\n" lines "${packages}")
if(lines)
  string(APPEND lines "\n")
endif()
# Written beside and renamed: an interrupted install never leaves half a list.
file(WRITE "${list_file}.tmp" "${header}${lines}")
file(RENAME "${list_file}.tmp" "${list_file}")
message(STATUS "Installing: ${list_file}")
