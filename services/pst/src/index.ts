export * from "./pst.js";
export * from "./model.js";
export * from "./conntrack.js";
export * from "./detector.js";
export * from "./training.js";
export * from "./pcap.js";
