import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { addonUnavailableReason, constants, VigilNetlink } from "../src/index.js";
import { DIR_EGRESS, DIR_INGRESS, FAMILY_IPV4, FAMILY_IPV6 } from "@vigil/frames";

const skip = addonUnavailableReason();
if (skip) console.warn(`netlink addon tests skipped: ${skip}`);
const moduleLoaded = existsSync("/sys/module/vigil");

describe.skipIf(skip)(`@vigil/netlink addon${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("exports the ABI constants from the kernel header", () => {
    const c = constants();
    expect(c.VIGIL_GENL_NAME).toBe("vigil");
    expect(c.VIGIL_MCGRP_EVENTS).toBe("events");
    expect(c.VIGIL_RULE_DIR_INGRESS).toBe(DIR_INGRESS);
    expect(c.VIGIL_RULE_DIR_EGRESS).toBe(DIR_EGRESS);
    expect(c.VIGIL_RULE_DIR_BOTH).toBe(DIR_INGRESS | DIR_EGRESS);
    expect(c.VIGIL_FAMILY_IPV4).toBe(FAMILY_IPV4);
    expect(c.VIGIL_FAMILY_IPV6).toBe(FAMILY_IPV6);
    expect(c.VIGIL_RULE_HOST).not.toBe(c.VIGIL_RULE_GENERAL);
  });

  it.skipIf(moduleLoaded)("fails to open with ENOENT and an explanation when the family is not registered", () => {
    let err: (Error & { code?: string; errno?: number; extack?: string }) | null = null;
    try {
      VigilNetlink.open();
    } catch (e) {
      err = e as typeof err;
    }
    expect(err).not.toBeNull();
    expect(err!.code).toBe("VIGIL_ERR_NETLINK");
    expect(err!.errno).toBe(2);
    expect(err!.extack).toMatch(/not registered/);
    expect(VigilNetlink.available()).toBe(false);
  });
});
