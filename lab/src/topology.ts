/** The lab's fixed addressing (mirrors lab.sh): lab-only ranges, one MAC per host. */
export type LabHost = "victim" | "c1" | "c2" | "c3" | "atk" | "atk2";

const OCTETS: Record<LabHost, number> = { victim: 10, c1: 21, c2: 22, c3: 23, atk: 66, atk2: 67 };

export const BENIGN_HOSTS: LabHost[] = ["c1", "c2", "c3"];
export const ATTACK_HOSTS: LabHost[] = ["atk", "atk2"];

export function labAddress4(host: LabHost): string {
  return `10.77.0.${OCTETS[host]}`;
}

export function labAddress6(host: LabHost): string {
  return `fd77::${OCTETS[host]}`;
}

export function labMac(host: LabHost): string {
  return `02:77:00:00:00:${OCTETS[host].toString(16).padStart(2, "0")}`;
}
