/* hostconf.h - the host-side configuration of ringstor-migrate (issue 5
 * item 5): which appliance, which remote shell, the hosts and the VMs, in
 * libconfig syntax (default /etc/ringstor/migrate.conf; see
 * companion/migrate.conf.example and companion/README.md):
 *
 *   appliance = "storagebox";  rsh = "ssh -o BatchMode=yes";  adm = "ringstoradm";
 *   remote_cmd = "/usr/sbin/ringstor-migrate";  journal_dir = "/var/lib/ringstor-migrate";
 *   port = 49152;  transfer_at = "completed";
 *   hosts = ( { name = "hostA"; rsh_host = "root@hostA"; address = "10.0.0.1";
 *               initiator_name = "iqn...:hosta"; nfs_holder = "10.0.0.1";
 *               qmp_dir = "/run/qemu"; libvirt_uri = "qemu+ssh://hostA/system"; } );
 *   vms = ( { name = "vm1"; driver = "qemu"; domain = "vm1"; qmp = "/run/qemu/vm1.qmp";
 *             pidfile = "..."; qemu_cmdline = "FILE"; domain_xml = "FILE";
 *             disks = [ "iscsi://box/iqn.../1" ]; leases = [ "tid=1,lun=1" ];
 *             memory = "1G"; bridges = [ "br0" ]; } );
 *
 * Every error names the file and line ("FILE:LINE: ..."); unknown settings
 * are errors too (a misspelt key must not silently fall back to a
 * default). */
#ifndef RS_COMPANION_HOSTCONF_H
#define RS_COMPANION_HOSTCONF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOSTCONF_DEFAULT_PATH "/etc/ringstor/migrate.conf"

struct hc_host {
	char *name;            /* what --src/--dst name */
	char *rsh_host;        /* appended to rsh (default: name) */
	char *address;         /* migration stream address; default NFS lease holder */
	char *initiator_name;  /* iSCSI identity: lease holder, QEMU's -iscsi initiator-name */
	char *nfs_holder;      /* NFS lease identity (default: address) */
	char *qmp_dir;         /* QMP sockets of the VMs on this host: DIR/VM.qmp */
	char *libvirt_uri;     /* libvirt driver: this host as a migration target */
	int line;
};

struct hc_vm {
	char *name;
	char *driver;          /* "qemu" (default), "libvirt", "xen" */
	char *domain;          /* libvirt/xen domain name (default: name) */
	char *qmp;             /* QMP socket on the source host (default: HOST.qmp_dir/NAME.qmp) */
	char *pidfile;         /* QEMU pid file on the source host (default: QMP.pid) */
	char *qemu_cmdline;    /* file (on this host) with the QEMU command line */
	char *domain_xml;      /* file (on this host) with the libvirt domain XML */
	char **disks;
	size_t ndisks;
	char **leases;         /* ringstoradm lease objects: "tid=1,lun=1", "lld=nfs,export-id=1,file=vm.img" */
	size_t nleases;
	bool mem_known;
	uint64_t memory_kib;
	char **bridges;
	size_t nbridges;
	int line;
};

struct hostconf {
	char *path;
	char *appliance, *rsh, *adm, *remote_cmd, *journal_dir, *transfer_at;
	int port;              /* 0: not set */
	struct hc_host *hosts;
	size_t nhosts;
	struct hc_vm *vms;
	size_t nvms;
};

/* Reads and checks a configuration file.  0, or -1 with "FILE:LINE: why"
 * in err. */
int hostconf_load(struct hostconf *hc, const char *path, char *err, size_t errlen);
/* The same from a string (name is what errors call it). */
int hostconf_parse(struct hostconf *hc, const char *text, const char *name, char *err, size_t errlen);
void hostconf_free(struct hostconf *hc);

/* Lookups by name; NULL if absent. */
const struct hc_host *hostconf_host(const struct hostconf *hc, const char *name);
const struct hc_vm *hostconf_vm(const struct hostconf *hc, const char *name);

/* The lease kind of a --lease spec: true for NFS (lld=nfs, or path=/export-id=). */
bool lease_spec_is_nfs(const char *spec);

/* A host's lease identity for a VM's leases: the initiator name for iSCSI
 * leases, nfs_holder (else address, else NULL) for NFS ones.  NULL with
 * err set when the host lacks it or the VM mixes both kinds (one holder
 * identity per host per migration). */
const char *hostconf_holder(const struct hc_host *h, char *const *leases, size_t nleases, char *err, size_t errlen);
#endif
