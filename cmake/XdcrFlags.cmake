# Build flags for every xdcr target, as one INTERFACE target (xdcr_flags).
add_library(xdcr_flags INTERFACE)
target_compile_options(xdcr_flags INTERFACE
    -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wformat-security
    -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition
    -Wpointer-arith -Wcast-qual -Wwrite-strings -Wvla
    -Wundef -Wimplicit-fallthrough -Wno-unused-parameter
    -fno-common)
target_compile_definitions(xdcr_flags INTERFACE _GNU_SOURCE
    XDCR_VERSION="${PROJECT_VERSION}")
if(XDCR_SANITIZE)
    target_compile_options(xdcr_flags INTERFACE
        -fsanitize=address,undefined -fno-sanitize-recover=undefined
        -fno-omit-frame-pointer -g)
    target_link_options(xdcr_flags INTERFACE -fsanitize=address,undefined)
endif()
if(XDCR_FUZZ)
    # coverage instrumentation for everything a fuzz target links; the targets themselves add
    # -fsanitize=fuzzer (tests/fuzz/CMakeLists.txt)
    target_compile_options(xdcr_flags INTERFACE -fsanitize=fuzzer-no-link)
    target_link_options(xdcr_flags INTERFACE -fsanitize=fuzzer-no-link)
endif()
