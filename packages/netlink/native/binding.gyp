{
  "targets": [
    {
      "target_name": "vigil_netlink",
      "sources": ["src/addon.cc", "src/client.cc", "src/js.cc", "src/genl_socket.cc", "src/rule_codec.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../../../kmod/include/uapi"
      ],
      "libraries": ["-lmnl"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"]
    }
  ]
}
