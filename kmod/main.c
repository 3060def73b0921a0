// SPDX-License-Identifier: GPL-2.0
/*
 * vigil.ko: netfilter capture into mmap rings, an RCU rule table with
 * expiry and a generic netlink control interface, per network namespace.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/rcupdate.h>
#include <net/genetlink.h>

#include "params.h"
#include "ring_geom.h"
#include "rules.h"
#include "netns.h"
#include "netlink.h"
#include "ring.h"

unsigned int vigil_param_slots = 4096;
module_param_named(slots, vigil_param_slots, uint, 0444);
MODULE_PARM_DESC(slots, "Slots per per-CPU capture ring (power of two, 2..1048576)");

unsigned int vigil_param_snaplen = 128;
module_param_named(snaplen, vigil_param_snaplen, uint, 0444);
MODULE_PARM_DESC(snaplen, "Bytes captured from the L3 header on (0..65408)");

bool vigil_param_capture = true;
module_param_named(capture, vigil_param_capture, bool, 0444);
MODULE_PARM_DESC(capture, "Initial capture on/off for new namespaces");

unsigned int vigil_param_sample = 1;
module_param_named(sample, vigil_param_sample, uint, 0444);
MODULE_PARM_DESC(sample, "Initial sampling for new namespaces: capture 1 in N (>= 1)");

bool vigil_param_capture_dropped = true;
module_param_named(capture_dropped, vigil_param_capture_dropped, bool, 0444);
MODULE_PARM_DESC(capture_dropped, "Initially also capture packets dropped by rules");

bool vigil_param_capture_loopback;
module_param_named(capture_loopback, vigil_param_capture_loopback, bool, 0444);
MODULE_PARM_DESC(capture_loopback, "Initially also capture packets on loopback devices");

unsigned int vigil_param_userns_max_rules = 65536;
module_param_named(userns_max_rules, vigil_param_userns_max_rules, uint, 0644);
MODULE_PARM_DESC(userns_max_rules, "Rules a namespace owned by a non-initial user namespace may hold");

static int __init vigil_init(void)
{
	struct vigil_ring_geom g = {
		.page_size = PAGE_SIZE,
		.ring_count = nr_cpu_ids,
		.slots = vigil_param_slots,
		.snaplen = vigil_param_snaplen,
	};
	int err;

	if (vigil_ring_geom_compute(&g)) {
		pr_err("invalid slots=%u or snaplen=%u\n", vigil_param_slots,
		       vigil_param_snaplen);
		return -EINVAL;
	}
	if (!vigil_param_sample) {
		pr_err("sample must be >= 1\n");
		return -EINVAL;
	}

	err = vigil_rules_init();
	if (err)
		return err;
	err = vigil_netns_init();
	if (err)
		goto err_rules;
	err = vigil_genl_init();
	if (err)
		goto err_netns;
	err = vigil_dev_init();
	if (err)
		goto err_genl;
	pr_info("loaded: %u rings x %u slots x %llu bytes, snaplen %u\n",
		nr_cpu_ids, vigil_param_slots, g.slot_size, vigil_param_snaplen);
	return 0;

err_genl:
	vigil_genl_exit();
err_netns:
	vigil_netns_exit();
err_rules:
	vigil_rules_exit();
	return err;
}

static void __exit vigil_exit(void)
{
	/* No new readers, no new netlink requests, then tear every namespace
	 * down (hooks first), then wait for the RCU callbacks that free rules. */
	vigil_dev_exit();
	vigil_genl_exit();
	vigil_netns_exit();
	rcu_barrier();
	vigil_rules_exit();
	pr_info("unloaded\n");
}

module_init(vigil_init);
module_exit(vigil_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("Vigil project");
MODULE_DESCRIPTION("Vigil adaptive firewall: capture rings, rule table, generic netlink");
MODULE_VERSION("1.0");
MODULE_ALIAS_GENL_FAMILY(VIGIL_GENL_NAME);
