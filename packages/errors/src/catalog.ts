/**
 * Every error code Vigil raises, with what it means and where it comes from, as fastify keeps
 * its FST_ERR_* codes in lib/errors.js. An error with a VIGIL_ERR_* code is an expected failure
 * (bad input, a missing dependency, a peer that went away): the services report its message on
 * one line, without a stack. docs/errors.md is generated from this table
 * (deploy/scripts/errors-reference.mjs), and deploy/test/docs.test.ts fails when a code used in
 * the source is missing here or a code here is used nowhere.
 */
export interface ErrorEntry {
  /** What went wrong, for the person who reads the error. */
  meaning: string;
  /** The part of Vigil that raises it. */
  where: string;
}

export const errorCatalog = {
  // Command line and configuration
  VIGIL_ERR_USAGE: {
    meaning: "A command was called with a missing, unknown or malformed argument or option; the message names it and the usage follows.",
    where: "every command line (`vigil`, service CLIs, lab)",
  },
  VIGIL_ERR_CONFIG: {
    meaning: "The configuration is invalid: the message names the key, the problem and where the value came from (file, environment or flag).",
    where: "@vigil/config; rules (nftables table name)",
  },
  VIGIL_ERR_OPTIONS: {
    meaning: "A packet source was opened with an out-of-range option (batch size, ring size, speed, local networks).",
    where: "@vigil/packet-sources",
  },
  VIGIL_ERR_LISTEN: {
    meaning: "A server cannot listen on its address and port (in use, or not permitted).",
    where: "metrics endpoints, the rules gRPC server, the console",
  },

  // NATS and messages
  VIGIL_ERR_BUS: {
    meaning: "NATS cannot be reached within the first-connect timeout; the message names the servers tried.",
    where: "@vigil/bus, capture",
  },
  VIGIL_ERR_NATS: {
    meaning: "A nats-server that Vigil starts itself did not start (not installed, exited, or not ready in time).",
    where: "`vigil up`, lab",
  },
  VIGIL_ERR_DECODE: {
    meaning: "A message on the bus does not decode as the type its subject carries; the message names the type, size and subject.",
    where: "@vigil/bus codecs",
  },
  VIGIL_ERR_NOTIFY_DELIVERY: {
    meaning: "A notification was not accepted by its target (HTTP status, connection error, sendmail exit status); the message names the target, never its URL. Retried with backoff, or dead-lettered when permanent or out of retries.",
    where: "notify",
  },
  VIGIL_ERR_STORE: {
    meaning: "The rule store is unusable: JetStream is not enabled on the NATS server, or the store is not open.",
    where: "rules",
  },

  // Frames and addresses
  VIGIL_ERR_RECORD_FORMAT: {
    meaning: "A frame batch holds a malformed record (bad length or header); the batch is skipped.",
    where: "@vigil/frames, detectors",
  },
  VIGIL_ERR_ADDRESS: {
    meaning: "Text that should be an IPv4 or IPv6 address or CIDR is not one.",
    where: "@vigil/frames",
  },

  // Packet sources
  VIGIL_ERR_ADDON: {
    meaning: "The packet-sources native addon is not built; run the build.",
    where: "@vigil/packet-sources",
  },
  VIGIL_ERR_SOURCE: {
    meaning: "A packet source's capture thread failed; the message carries the cause.",
    where: "@vigil/packet-sources (native engine)",
  },
  VIGIL_ERR_PERMISSION: {
    meaning: "Capturing needs a privilege this process lacks (CAP_NET_RAW for AF_PACKET, access to /dev/vigil or to the capture file).",
    where: "@vigil/packet-sources",
  },
  VIGIL_ERR_NO_DEVICE: {
    meaning: "/dev/vigil does not exist: the kernel module is not loaded.",
    where: "@vigil/packet-sources (ring source)",
  },
  VIGIL_ERR_BUSY: {
    meaning: "Another capture process already reads the module's rings.",
    where: "@vigil/packet-sources (ring source)",
  },
  VIGIL_ERR_RING: {
    meaning: "The module's rings cannot be opened, mapped or polled.",
    where: "@vigil/packet-sources (ring source)",
  },
  VIGIL_ERR_INTERFACE: {
    meaning: "The network interface to capture on is invalid, unknown, or disappeared while capturing.",
    where: "@vigil/packet-sources (AF_PACKET)",
  },
  VIGIL_ERR_AFPACKET: {
    meaning: "An AF_PACKET socket could not be set up or failed while capturing.",
    where: "@vigil/packet-sources (AF_PACKET)",
  },
  VIGIL_ERR_FILTER: {
    meaning: "A capture filter does not compile; the message names the filter.",
    where: "@vigil/packet-sources",
  },
  VIGIL_ERR_PCAP_OPEN: {
    meaning: "A capture file cannot be opened.",
    where: "@vigil/packet-sources (pcap)",
  },
  VIGIL_ERR_PCAP_LINKTYPE: {
    meaning: "A capture file's link type is not one Vigil decodes.",
    where: "@vigil/packet-sources (pcap)",
  },
  VIGIL_ERR_PCAP: {
    meaning: "A capture file is corrupt or truncated; the error carries the file and the byte offset.",
    where: "@vigil/packet-sources (pcap)",
  },

  // Kernel module and enforcement
  VIGIL_ERR_NETLINK: {
    meaning: "The kernel module refused or failed a generic netlink request; the message carries the kernel's extended ack.",
    where: "@vigil/netlink",
  },
  VIGIL_ERR_NETLINK_ADDON: {
    meaning: "The netlink native addon is not built; run the build.",
    where: "@vigil/netlink",
  },
  VIGIL_ERR_NETLINK_ARG: {
    meaning: "A rule handed to the netlink client has a field of the wrong type or range; the message names rules[i].field.",
    where: "@vigil/netlink",
  },
  VIGIL_ERR_NETLINK_CLOSED: {
    meaning: "The netlink client was used after it was closed.",
    where: "@vigil/netlink",
  },
  VIGIL_ERR_NFT: {
    meaning: "nftables refused a command, or the libnftables binding is not built.",
    where: "rules (nftables enforcer)",
  },

  // Rules API
  VIGIL_ERR_INVALID_ARGUMENT: {
    meaning: "A request to the rules API is invalid (a malformed rule, address, port or duration); the message names the field.",
    where: "rules (gRPC API)",
  },
  VIGIL_ERR_NOT_FOUND: {
    meaning: "The rule, verdict or file asked for does not exist.",
    where: "rules API, console",
  },
  VIGIL_ERR_LOCKOUT: {
    meaning:
      "A manual drop rule, or a drop rule being extended, would cut this host off (loopback, its own addresses, the gateway, a DNS server, the allowlist or the caller's own session); refused unless forced. A drop of everything (0.0.0.0/0, ::/0) is refused even when forced.",
    where: "rules (gRPC API, `vigil rules add` and `extend`, console)",
  },
  VIGIL_ERR_STORE_RECORD: {
    meaning: "A record in the rules' JetStream KV bucket failed the same checks as API input; it is quarantined (left in the bucket, never loaded) and the rest are enforced. A refused warm-up start (phase.warmup) is replaced: the warm-up begins again, it never counts as over.",
    where: "rules (store)",
  },

  // Detectors and models
  VIGIL_ERR_PST: {
    meaning: "A PST detector failure that has no more specific code.",
    where: "pst",
  },
  VIGIL_ERR_PST_CONFIG: {
    meaning: "The PST service classes are invalid (names, ports, too many classes).",
    where: "pst",
  },
  VIGIL_ERR_PST_PARAMS: {
    meaning: "A PST learning parameter is out of range; the message names it.",
    where: "pst",
  },
  VIGIL_ERR_PST_MODEL: {
    meaning: "A PST model file cannot be read or is inconsistent; the message names the file and the field.",
    where: "pst",
  },
  VIGIL_ERR_PST_SYMBOL: {
    meaning: "A PST symbol is outside the alphabet, or a token does not name one (expected e.g. C:S, S:SA, END).",
    where: "@vigil/models (PST alphabet)",
  },
  VIGIL_ERR_PST_TRAIN: {
    meaning: "PST training found nothing to learn from (no TCP connections in the captures).",
    where: "`vigil train pst`",
  },
  VIGIL_ERR_SOM: {
    meaning: "A SOM map operation was given inconsistent dimensions or parameters.",
    where: "som",
  },
  VIGIL_ERR_SOM_MODEL: {
    meaning: "A SOM model or feedback file cannot be read, does not match this detector's features, or there is too little to train on.",
    where: "som",
  },
  VIGIL_ERR_MODEL: {
    meaning: "A model document (a detector's export or a saved model file) cannot be read or is unavailable; the message names the field, file or subject.",
    where: "@vigil/models, console",
  },

  // Console
  VIGIL_ERR_UNAUTHORIZED: {
    meaning: "The console needs a valid session or token for this request.",
    where: "console",
  },
  VIGIL_ERR_RATE_LIMITED: {
    meaning: "Too many failed console logins (wrong token at /login, in the header or the URL) from this address in the last minute; the answer's Retry-After says when to try again.",
    where: "console",
  },
  VIGIL_ERR_CSRF: {
    meaning: "A mutating console request lacks the anti-CSRF header.",
    where: "console",
  },
  VIGIL_ERR_BAD_REQUEST: {
    meaning: "A console API request does not match its schema.",
    where: "console",
  },
  VIGIL_ERR_INTERNAL: {
    meaning: "The console failed on a request for an unexpected reason (a bug: the log has the stack).",
    where: "console",
  },
  VIGIL_ERR_CONSOLE_BUILD: {
    meaning: "The console's web assets are not built.",
    where: "console",
  },
  VIGIL_ERR_RULES_UNAVAILABLE: {
    meaning: "The console cannot reach the rules service.",
    where: "console",
  },
  VIGIL_ERR_RULES_API: {
    meaning: "The rules service answered the console with an error.",
    where: "console",
  },

  // Lab
  VIGIL_ERR_LAB: {
    meaning: "A lab step (lab.sh: namespaces, tools, traffic) failed; the message carries its output.",
    where: "lab",
  },
  VIGIL_ERR_LABELS: {
    meaning: "A lab labels file is missing or malformed; the message names the file and the field.",
    where: "lab",
  },
  VIGIL_ERR_NOT_BUILT: {
    meaning: "The lab needs the services built first.",
    where: "lab",
  },
  VIGIL_ERR_REPLAY: {
    meaning: "A lab replay through the pipeline failed: a service exited while it was awaited; the message ends with its log.",
    where: "lab",
  },
  VIGIL_ERR_TIMEOUT: {
    meaning: "A lab stage did not become ready in time; the message names what was awaited and where the logs are.",
    where: "lab",
  },
  VIGIL_ERR_TRAIN: {
    meaning: "Training a leave-one-out fold's models (vigil eval --leave-one-out) failed; the message names the fold's model directory and the recipe's output.",
    where: "lab",
  },
} as const satisfies Record<`VIGIL_ERR_${string}`, ErrorEntry>;

export type ErrorCode = keyof typeof errorCatalog;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(errorCatalog, code);
}
