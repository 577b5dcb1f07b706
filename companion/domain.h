/* domain.h - what the companion needs to know about a VM, read from a libvirt
 * domain XML file or a QEMU command line: its disks (as paths or URLs the
 * probe understands), the bridges its NICs use and its memory size. */
#ifndef RS_COMPANION_DOMAIN_H
#define RS_COMPANION_DOMAIN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm_spec {
	char *name;
	bool mem_known;
	uint64_t memory_kib;
	char **disks;      /* path, iscsi://host[:port]/iqn/lun or nfs://host/path */
	size_t ndisks;
	char **bridges;
	size_t nbridges;
	char **notes;      /* things we skipped or could not understand */
	size_t nnotes;
};

/* Parses libvirt domain XML (https://libvirt.org/formatdomain.html):
 * <name>, <memory unit=...>, <devices><disk device='disk'|'lun'> with
 * <source file=|dev=|protocol='iscsi'|'nfs' name=...><host name= port=/>,
 * and <interface type='bridge'><source bridge=/>.  Not a validating XML
 * parser: comments, processing instructions and entities &amp; &lt; &gt;
 * &quot; &apos; are handled; anything it cannot follow is an error.
 * Returns 0, or -1 with the reason in err. */
int domain_parse_xml(struct vm_spec *vm, const char *text, size_t len, char *err, size_t errlen);

/* Parses a QEMU command line (as in /proc/PID/cmdline with NULs, or a shell
 * line with quotes and backslash-newlines): -name, -m, -drive file=,
 * -hda..-hdd, -blockdev (key=value or JSON; file/host_device/iscsi/nfs
 * drivers), -netdev/-nic bridge,br=. */
int domain_parse_qemu_cmdline(struct vm_spec *vm, const char *text, size_t len, char *err, size_t errlen);

/* Size with an optional libvirt unit ("KiB" default for XML); false if bad. */
bool parse_size_unit(const char *num, const char *unit, uint64_t default_mult, uint64_t *bytes);

/* Splits a command line into words (see domain.c); -1 on unbalanced quotes.
 * *words is a malloc'd vector of *n malloc'd strings. */
int cmdline_split(const char *text, size_t len, char ***words, size_t *n);

void vm_spec_free(struct vm_spec *vm);
#endif
