# shellcheck shell=bash
# Sourced by the build scripts of the project's native libraries: each library carries the SHA-256
# of what it was built from (pipeline.tools.load_stamped_library checks the same at load time).
# stamp_of FILE                 -> prints FILE's SHA-256
# stamped_with DIR/LIB SHA      -> exit 0 when that library exists and carries SHA
stamp_of() { sha256sum "$1" | cut -d' ' -f1; }
stamped_with() { [[ -f "$1" ]] && grep -qaF "$2" "$1"; }
