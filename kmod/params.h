/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Module parameters (main.c): the ring geometry and the initial
 * configuration of every new namespace.
 */
#ifndef _VIGIL_PARAMS_H
#define _VIGIL_PARAMS_H

#include <linux/types.h>

extern unsigned int vigil_param_slots;
extern unsigned int vigil_param_snaplen;
extern bool vigil_param_capture;
extern unsigned int vigil_param_sample;
extern bool vigil_param_capture_dropped;
extern bool vigil_param_capture_loopback;
extern unsigned int vigil_param_userns_max_rules;

#endif /* _VIGIL_PARAMS_H */
