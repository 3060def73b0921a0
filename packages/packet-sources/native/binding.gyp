{
  "targets": [
    {
      "target_name": "vigil_packet_sources",
      "sources": [
        "src/addon.cc",
        "src/engine.cc",
        "src/pcap_source.cc",
        "src/afpacket_source.cc",
        "src/ring_source.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../../../kmod/include/uapi"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O2", "-g", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["-lpcap", "-lpthread"]
    }
  ]
}
