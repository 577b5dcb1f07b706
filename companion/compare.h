/* compare.h - the preflight rules: compare the source's and the destination's
 * probes (and what we know of the VM) and produce one verdict per check. */
#ifndef RS_COMPANION_COMPARE_H
#define RS_COMPANION_COMPARE_H
#include <stdbool.h>
#include <stddef.h>

#include "companion/domain.h"
#include "companion/probe.h"

enum check_status { CHECK_PASS, CHECK_WARN, CHECK_FAIL };

struct check {
	enum check_status status;
	char *name;    /* "arch", "cpu", "identity[0]", ... */
	char *reason;
};

struct check_list {
	struct check *v;
	size_t n;
};

/* Appends the verdicts of every rule, in a fixed order:
 *   disks, path[i], identity[i], size[i], fingerprint[i] (per disk),
 *   arch, cpu, hypervisor, memory, bridges, subnet, lease.
 * Disks are paired by position (the destination may reach disk i by another
 * path: that is a path FAIL, but identity and content are still compared).
 * vm may be NULL (no domain XML / command line: bridges and memory unknown).
 * src_again and dst_again may be NULL: when the first fingerprints differ
 * (compare_needs_second_source_probe), preflight probes the destination
 * again (dst_again) and then the source (src_again), one after the other.
 * A sample equal in src and src_again was stable while dst_again read it,
 * so a difference there is real; samples that changed on the source are
 * being written by the running VM and are not held against the
 * destination.  dst_again NULL: dst is taken as read between src and
 * src_again. */
void compare_probes(const struct probe_host *src, const struct probe_host *dst, const struct vm_spec *vm,
		    const struct probe_host *dst_again, const struct probe_host *src_again, struct check_list *out);
/* True if some disk has the same identity on both hosts but different
 * content: worth probing the destination and then the source again to tell
 * a writing VM from a different image. */
bool compare_needs_second_source_probe(const struct probe_host *src, const struct probe_host *dst);

void check_add(struct check_list *l, enum check_status st, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
const char *check_status_name(enum check_status st);
/* The check named `name`, or NULL. */
const struct check *check_find(const struct check_list *l, const char *name);
/* 1 if any check FAILed, else 0. */
int check_list_exit_code(const struct check_list *l);
/* "STATUS name: reason\n" per check (caller frees). */
char *check_list_text(const struct check_list *l);
/* {"result": "PASS"|"FAIL", "checks": [{"status","check","reason"}...]} */
char *check_list_json(const struct check_list *l, const char *source, const char *dest);
void check_list_free(struct check_list *l);
#endif
