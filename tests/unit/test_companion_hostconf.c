/* test_companion_hostconf.c - the host configuration of ringstor-migrate
 * (companion/hostconf.c, issue 5 item 5): a full file read back, every
 * kind of mistake reported with its file and line (table-driven), the
 * lease-identity choice per host, the example file shipped in
 * companion/migrate.conf.example.  Linked with libcompanion.a. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "companion/hostconf.h"

static const char *const good =
	"# a comment\n"
	"appliance = \"storagebox\";\n"
	"rsh = \"ssh -o BatchMode=yes\";\n"
	"adm = \"ringstoradm -C /run/ringstord.sock\";\n"
	"remote_cmd = \"/usr/sbin/ringstor-migrate\";\n"
	"journal_dir = \"/var/lib/ringstor-migrate\";\n"
	"port = 49200;\n"
	"transfer_at = \"pre-switchover\";\n"
	"hosts = (\n"
	"  { name = \"hostA\"; rsh_host = \"root@hosta.example\"; address = \"10.0.0.1\";\n"
	"    initiator_name = \"iqn.2026-01.com.example:hosta\"; qmp_dir = \"/run/qemu\"; },\n"
	"  { name = \"hostB\"; address = \"10.0.0.2\"; nfs_holder = \"hostb\";\n"
	"    initiator_name = \"iqn.2026-01.com.example:hostb\"; libvirt_uri = \"qemu+ssh://hostb/system\"; }\n"
	");\n"
	"vms = (\n"
	"  { name = \"vm1\"; driver = \"qemu\"; qmp = \"/run/qemu/vm1.qmp\";\n"
	"    disks = [ \"iscsi://box/iqn.2026-01.io.ringstor:box/1\" ]; leases = [ \"tid=1,lun=1\" ];\n"
	"    memory = \"1G\"; bridges = [ \"br0\", \"br1\" ]; },\n"
	"  { name = \"vm2\"; driver = \"libvirt\"; domain = \"vm2-dom\"; memory = 512;\n"
	"    disks = \"nfs://box/export/vm2.img\"; leases = [ \"lld=nfs,export-id=1,file=vm2.img\" ]; }\n"
	");\n";

static void test_good(void **state)
{
	(void)state;
	struct hostconf hc;
	char err[512] = "";
	int r = hostconf_parse(&hc, good, "test.conf", err, sizeof(err));
	if (r != 0)
		fail_msg("%s", err);
	assert_string_equal(hc.appliance, "storagebox");
	assert_string_equal(hc.rsh, "ssh -o BatchMode=yes");
	assert_string_equal(hc.adm, "ringstoradm -C /run/ringstord.sock");
	assert_string_equal(hc.transfer_at, "pre-switchover");
	assert_int_equal(hc.port, 49200);
	assert_int_equal(hc.nhosts, 2);
	const struct hc_host *a = hostconf_host(&hc, "hostA");
	assert_non_null(a);
	assert_string_equal(a->rsh_host, "root@hosta.example");
	assert_string_equal(a->qmp_dir, "/run/qemu");
	assert_int_equal(a->line, 10);
	const struct hc_host *b = hostconf_host(&hc, "hostB");
	assert_non_null(b);
	assert_null(b->rsh_host);
	assert_string_equal(b->libvirt_uri, "qemu+ssh://hostb/system");
	assert_null(hostconf_host(&hc, "hostC"));
	const struct hc_vm *v = hostconf_vm(&hc, "vm1");
	assert_non_null(v);
	assert_int_equal(v->ndisks, 1);
	assert_int_equal(v->nleases, 1);
	assert_int_equal(v->nbridges, 2);
	assert_string_equal(v->bridges[1], "br1");
	assert_true(v->mem_known);
	assert_int_equal(v->memory_kib, 1024 * 1024);
	const struct hc_vm *v2 = hostconf_vm(&hc, "vm2");
	assert_non_null(v2);
	assert_string_equal(v2->driver, "libvirt");
	assert_string_equal(v2->domain, "vm2-dom");
	assert_int_equal(v2->memory_kib, 512 * 1024);     /* a bare number is MiB */
	assert_int_equal(v2->ndisks, 1);                  /* a single string is a list of one */

	/* lease identities: iSCSI -> initiator name, NFS -> nfs_holder, else address */
	assert_string_equal(hostconf_holder(a, v->leases, v->nleases, err, sizeof(err)), "iqn.2026-01.com.example:hosta");
	assert_string_equal(hostconf_holder(b, v2->leases, v2->nleases, err, sizeof(err)), "hostb");
	assert_string_equal(hostconf_holder(a, v2->leases, v2->nleases, err, sizeof(err)), "10.0.0.1");
	char *mixed[] = { (char *)"tid=1,lun=1", (char *)"lld=nfs,path=/srv/x.img" };
	assert_null(hostconf_holder(a, mixed, 2, err, sizeof(err)));
	assert_non_null(strstr(err, "both iSCSI and NFS"));
	hostconf_free(&hc);
}

static void test_lease_kind(void **state)
{
	(void)state;
	assert_false(lease_spec_is_nfs("tid=1,lun=1"));
	assert_true(lease_spec_is_nfs("lld=nfs,path=/srv/a.img"));
	assert_true(lease_spec_is_nfs("export-id=1,file=a.img"));
	assert_false(lease_spec_is_nfs("lld=iscsi,tid=2,lun=0"));
	assert_false(lease_spec_is_nfs(""));
}

/* Each mistake: the text, and what the message must contain ("FILE:LINE: ..."). */
static const struct {
	const char *text, *want;
} bad[] = {
	{ "appliance = \"x\"\nrsh = 1;\n", "t.conf:2:" },                                   /* syntax: missing ; */
	{ "applianse = \"x\";\n", "t.conf:1: unknown setting 'applianse'" },
	{ "rsh = 5;\n", "t.conf:1: 'rsh' must be a string" },
	{ "appliance = \"\";\n", "t.conf:1: 'appliance' must not be empty" },
	{ "port = 70000;\n", "t.conf:1: port: want a number 1..65535" },
	{ "port = \"22\";\n", "t.conf:1: port" },
	{ "transfer_at = \"later\";\n", "t.conf:1: transfer_at" },
	{ "hosts = { name = \"a\"; };\n", "t.conf:1: 'hosts' must be a list" },
	{ "hosts = ( \"a\" );\n", "t.conf:1: 'hosts': element 1 must be a group" },
	{ "hosts = (\n { name = \"a\";\n adress = \"1.2.3.4\"; } );\n", "t.conf:3: unknown host setting 'adress'" },
	{ "hosts = ( { address = \"1.2.3.4\"; } );\n", "t.conf:1: a host needs a name" },
	{ "hosts = ( { name = \"a b\"; } );\n", "t.conf:1: host name 'a b'" },
	{ "hosts = ( { name = \"a\"; qmp_dir = \"run\"; } );\n", "qmp_dir must be an absolute path" },
	{ "hosts = ( { name = \"a\"; initiator_name = \"iqn.x,y\"; } );\n", "must not contain a comma" },
	{ "hosts = ( { name = \"a\"; },\n { name = \"a\"; } );\n", "t.conf:2: host 'a' is already defined at line 1" },
	{ "vms = ( { name = \"v\"; driver = \"vmware\"; } );\n", "t.conf:1: VM v: driver 'vmware'" },
	{ "vms = ( { name = \"v\";\n disks = [ 1, 2 ]; } );\n", "t.conf:2: 'disks': element 1 must be a non-empty string" },
	{ "vms = ( { name = \"v\"; disks = ( \"a\", 3 ); } );\n", "'disks': element 2 must be a non-empty string" },
	{ "vms = ( { name = \"v\"; bridges = 3; } );\n", "'bridges' must be an array of strings" },
	{ "vms = ( { name = \"v\"; memory = \"lots\"; } );\n", "t.conf:1: memory: want a size" },
	{ "vms = ( { name = \"v\"; memory = -1; } );\n", "memory: -1 MiB is out of range" },
	{ "vms = ( { name = \"v\"; leases = [ \"tid1\" ]; } );\n", "lease 'tid1': want KEY=VALUE" },
	{ "vms = ( { name = \"v\"; qemu_cmdline = \"a\"; domain_xml = \"b\"; } );\n", "not both" },
	{ "vms = ( { disks = [ \"a\" ]; } );\n", "a VM needs a name" },
	{ "vms = ( { name = \"v\"; cpu = \"x\"; } );\n", "unknown VM setting 'cpu'" },
	{ "vms = ( { name = \"v\"; },\n\n { name = \"v\"; } );\n", "t.conf:3: VM 'v' is already defined at line 1" },
};

static void test_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hostconf hc;
		char err[512] = "";
		if (hostconf_parse(&hc, bad[i].text, "t.conf", err, sizeof(err)) == 0) {
			hostconf_free(&hc);
			fail_msg("case %zu accepted: %s", i, bad[i].text);
		}
		if (!strstr(err, bad[i].want))
			fail_msg("case %zu: message '%s' lacks '%s'", i, err, bad[i].want);
	}
}

static void test_files(void **state)
{
	(void)state;
	struct hostconf hc;
	char err[512] = "";
	assert_int_equal(hostconf_load(&hc, "/nonexistent/migrate.conf", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/migrate.conf: No such file"));

	char path[] = "/tmp/test_hostconf.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *t = "hosts = ( { name = \"a\"; } );\n\nvms = ( { name = \"v\"; disks = [ 7 ]; } );\n";
	assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
	close(fd);
	assert_int_equal(hostconf_load(&hc, path, err, sizeof(err)), -1);
	char want[64];
	snprintf(want, sizeof(want), "%s:3:", path);
	if (!strstr(err, want))
		fail_msg("'%s' lacks '%s'", err, want);
	unlink(path);

	/* the example we ship must load */
	const char *cands[] = { "companion/migrate.conf.example", "../companion/migrate.conf.example",
				"../../companion/migrate.conf.example" };
	for (size_t i = 0; i < 3; i++) {
		if (access(cands[i], R_OK) != 0)
			continue;
		if (hostconf_load(&hc, cands[i], err, sizeof(err)) != 0)
			fail_msg("%s", err);
		assert_true(hc.nhosts >= 2);
		assert_true(hc.nvms >= 1);
		hostconf_free(&hc);
		break;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_lease_kind),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
