# Shared by scripts/run and scripts/test: install what is missing from Debian, then configure and build.
# Sourced, not run.

XGRAD_PACKAGES=(cmake g++ make pkg-config xtensor-dev libxsimd-dev libxtensor-blas-dev libopenblas-dev catch2 nlohmann-json3-dev libcli11-dev wamerican fortunes graphviz libopenmpi-dev openmpi-bin
                python3-dev pybind11-dev python3-numpy python3-pytest)   # the last four: the Python package and its tests

# The test suite's own: a real browser renders the reports; sshd and ip make two hosts (check_hosts.sh).
XGRAD_TEST_PACKAGES=(chromium openssh-server iproute2)

# ensure_packages [more packages...]: XGRAD_PACKAGES and these.
ensure_packages() {
    local missing=()
    for p in "${XGRAD_PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "xgrad: installing missing Debian packages: ${missing[*]}"
    local apt=(apt-get)
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            apt=(sudo apt-get)
        else
            echo "xgrad: cannot install packages (not root, and no password-less sudo). Run:" >&2
            echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
            exit 1
        fi
    fi
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}"
}

# configure_and_build BUILD_DIR [extra cmake args...]: Release unless CMAKE_BUILD_TYPE says otherwise.
configure_and_build() {
    local dir=$1
    shift
    if [ ! -f "$dir/CMakeCache.txt" ]; then
        cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}" "$@"
    fi
    cmake --build "$dir" -j "$(nproc)"
}
