/**
 * V8 heap settings of the daemons on the frame path, as every launcher starts
 * them: spawnService here (`vigil up`, the lab), the systemd units and the
 * container images (deploy/test checks that they carry these).
 *
 * Under load these daemons allocate mostly short-lived objects per frame
 * batch: the bus's message views and read buffers, decoded batches, windows
 * that close within seconds. V8 starts with a young generation of 1 MiB per
 * semi-space and an old generation sized for a small script, so at a
 * million frames a second a batch's objects outlive two scavenges and are
 * promoted, and the old generation, a few MiB over its limit after each
 * second, is marked again and again (som: a dozen full collections in four
 * replays of the bench capture). A 16 MiB young generation keeps a batch's
 * objects young until they die, and a 64 MiB starting limit for the old
 * generation leaves the long-lived state (connection tables, maps, models) room
 * to settle. Measured on the bench's warm replays, alternating with and
 * without: the detectors' CPU per million frames fell by about 15% (som by a
 * third on the lab mix). The cost is memory reserved up front, some 50 MiB a
 * daemon, of which only what is used is resident.
 */
export const FRAME_PATH_NODE_FLAGS: readonly string[] = ["--min-semi-space-size=16", "--initial-old-space-size=64"];

/** The daemons that handle every frame (or every verdict of every frame). */
export const FRAME_PATH_SERVICES: readonly string[] = ["capture", "pst", "som", "rules"];

/** The node options a daemon starts with, before its script. */
export function nodeFlagsOf(service: string): readonly string[] {
  return FRAME_PATH_SERVICES.includes(service) ? FRAME_PATH_NODE_FLAGS : [];
}
