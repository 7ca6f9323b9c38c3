# Sourced by the hw/ scripts: the apt tools and the Python venv they need, installed when missing.
#   hw_need_apt PKG...   (via scripts/lib.sh's apt_need)
#   hw_venv              sets HW_PY to a venv python with hw/requirements.txt installed; the venv
#                        lives in ~/.cache/atomik/hw-venv-<hash of requirements and python>.
HW_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HW_DIR/../scripts/lib.sh"

hw_venv() {
    apt_need python3-venv python3-pip
    local py key dir
    py=$(command -v python3)
    key=$( (cat "$HW_DIR/requirements.txt"; "$py" --version) | sha256sum | cut -c1-16)
    dir="$HOME/.cache/atomik/hw-venv-$key"
    if [ ! -f "$dir/.ok" ]; then
        echo "==> hw: Python venv $dir" >&2
        rm -rf "$dir"
        "$py" -m venv "$dir"
        "$dir/bin/pip" install -q --disable-pip-version-check -r "$HW_DIR/requirements.txt" >&2
        touch "$dir/.ok"
    fi
    HW_PY="$dir/bin/python"
    export PATH="$dir/bin:$PATH"
}
