/* test_companion_domain.c - VM definitions: the libvirt domain XML disk /
 * bridge / memory parser and the QEMU command-line parser (companion/domain.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "companion/domain.c"
#include "companion/json.c"
#include "companion/probe_host.c"
#include "companion/run.c"

static int xml(struct vm_spec *vm, const char *s, char *err, size_t errlen)
{
	return domain_parse_xml(vm, s, strlen(s), err, errlen);
}

static const char full_domain[] =
	"<?xml version='1.0'?>\n"
	"<!-- a libvirt domain -->\n"
	"<domain type='kvm' id='3'>\n"
	"  <name>web&amp;db</name>\n"
	"  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\n"
	"  <memory unit='GiB'>2</memory>\n"
	"  <currentMemory unit='KiB'>1048576</currentMemory>\n"
	"  <devices>\n"
	"    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
	"    <disk type='file' device='disk'>\n"
	"      <driver name='qemu' type='raw' cache='none'/>\n"
	"      <source file='/var/lib/libvirt/images/a b.img'/>\n"
	"      <target dev='vda' bus='virtio'/>\n"
	"    </disk>\n"
	"    <disk type='block' device='lun'>\n"
	"      <source dev=\"/dev/disk/by-id/wwn-0x6525400a\"/>\n"
	"      <target dev='sda' bus='scsi'/>\n"
	"    </disk>\n"
	"    <disk type='network' device='disk'>\n"
	"      <source protocol='iscsi' name='iqn.2026-11.io.ringstor:test/1'>\n"
	"        <host name='10.78.0.10' port='3260'/>\n"
	"        <host name='10.78.0.11' port='3260'/>\n"
	"      </source>\n"
	"      <target dev='vdb' bus='virtio'/>\n"
	"    </disk>\n"
	"    <disk type='network' device='disk'>\n"
	"      <source protocol='iscsi' name='iqn.2026-11.io.ringstor:test'><host name='san'/></source>\n"
	"    </disk>\n"
	"    <disk type='network' device='disk'>\n"
	"      <source protocol='nfs' name='/export/vm/disk.img'>\n"
	"        <host name='nfs.example' transport='tcp'/>\n"
	"      </source>\n"
	"    </disk>\n"
	"    <disk type='network' device='disk'>\n"
	"      <source protocol='rbd' name='pool/img'><host name='ceph'/></source>\n"
	"    </disk>\n"
	"    <disk type='file' device='cdrom'>\n"
	"      <source file='/iso/install.iso'/>\n"
	"      <readonly/>\n"
	"    </disk>\n"
	"    <interface type='bridge'>\n"
	"      <source bridge='br0'/>\n"
	"      <model type='virtio'/>\n"
	"    </interface>\n"
	"    <interface type='bridge'><source bridge='br-storage'/></interface>\n"
	"    <interface type='bridge'><source bridge='br0'/></interface>\n"
	"    <interface type='network'><source network='default'/></interface>\n"
	"  </devices>\n"
	"</domain>\n";

static void test_xml_full(void **state)
{
	(void)state;
	struct vm_spec vm;
	char err[256] = "";
	assert_int_equal(xml(&vm, full_domain, err, sizeof(err)), 0);
	assert_string_equal(vm.name, "web&db");
	assert_true(vm.mem_known);
	assert_true(vm.memory_kib == 2u << 20);
	assert_int_equal(vm.ndisks, 5);
	assert_string_equal(vm.disks[0], "/var/lib/libvirt/images/a b.img");
	assert_string_equal(vm.disks[1], "/dev/disk/by-id/wwn-0x6525400a");
	assert_string_equal(vm.disks[2], "iscsi://10.78.0.10:3260/iqn.2026-11.io.ringstor:test/1");
	assert_string_equal(vm.disks[3], "iscsi://san/iqn.2026-11.io.ringstor:test/0");
	assert_string_equal(vm.disks[4], "nfs://nfs.example/export/vm/disk.img");
	assert_int_equal(vm.nbridges, 2);
	assert_string_equal(vm.bridges[0], "br0");
	assert_string_equal(vm.bridges[1], "br-storage");
	/* rbd and the cdrom were skipped, and said so */
	assert_int_equal(vm.nnotes, 2);
	assert_non_null(strstr(vm.notes[0], "rbd"));
	assert_non_null(strstr(vm.notes[1], "cdrom"));
	vm_spec_free(&vm);
}

static void test_xml_memory_units(void **state)
{
	(void)state;
	static const struct { const char *xml; uint64_t kib; } t[] = {
		{ "<domain><memory>524288</memory></domain>", 524288 },
		{ "<domain><memory unit='KiB'>1024</memory></domain>", 1024 },
		{ "<domain><memory unit='MiB'>512</memory></domain>", 512 * 1024 },
		{ "<domain><memory unit='M'>3</memory></domain>", 3 * 1024 },
		{ "<domain><memory unit='G'>4</memory></domain>", 4u << 20 },
		{ "<domain><memory unit='b'>1048576</memory></domain>", 1024 },
		{ "<domain><memory unit='bytes'>2048</memory></domain>", 2 },
		{ "<domain><memory unit='KB'>1024</memory></domain>", 1000 },
		{ "<domain><memory unit='MB'>1</memory></domain>", 976 },
		{ "<domain><memory unit='TiB'>1</memory></domain>", 1ull << 30 },
		{ "<domain>\n <memory unit=\"GiB\" > 1 </memory>\n</domain>", 1u << 20 },
	};
	for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		struct vm_spec vm;
		char err[256] = "";
		if (xml(&vm, t[k].xml, err, sizeof(err)) != 0)
			fail_msg("#%zu: %s", k, err);
		assert_true(vm.mem_known);
		if (vm.memory_kib != t[k].kib)
			fail_msg("#%zu: %llu KiB, want %llu", k, (unsigned long long)vm.memory_kib,
				 (unsigned long long)t[k].kib);
		vm_spec_free(&vm);
	}
	/* no <memory>: unknown, not zero */
	struct vm_spec vm;
	char err[256];
	assert_int_equal(xml(&vm, "<domain><name>x</name></domain>", err, sizeof(err)), 0);
	assert_false(vm.mem_known);
	assert_int_equal(vm.ndisks, 0);
	vm_spec_free(&vm);
}

static void test_xml_rejects(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"just text",
		"<vm></vm>",
		"<domain>",
		"<domain></dom>",
		"<domain><name>x</domain>",
		"<domain><memory unit='parsecs'>1</memory></domain>",
		"<domain><memory>lots</memory></domain>",
		"<domain><memory>99999999999999999999999</memory></domain>",
		"<domain><memory unit='TiB'>99999999999</memory></domain>",
		"<domain a=1></domain>",
		"<domain a='1></domain>",
		"<domain><!-- unterminated </domain>",
		"<domain><name>a&bogus;b</name></domain>",
		"<domain></domain><domain></domain>",
		"<domain><devices><disk><source file='x' file2></disk></devices></domain>",
		"< domain></domain>",
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct vm_spec vm;
		char err[256] = "";
		if (xml(&vm, bad[k], err, sizeof(err)) == 0) {
			vm_spec_free(&vm);
			fail_msg("accepted bad XML #%zu: %s", k, bad[k]);
		}
		assert_non_null(strstr(err, "domain XML"));
	}
	/* too deep */
	struct strbuf sb = {0};
	sb_puts(&sb, "<domain>");
	for (int i = 0; i < 100; i++)
		sb_puts(&sb, "<a>");
	struct vm_spec vm;
	char err[256];
	assert_int_equal(xml(&vm, sb.buf, err, sizeof(err)), -1);
	sb_free(&sb);
}

static void test_xml_fuzz_no_crash(void **state)
{
	(void)state;
	size_t n = strlen(full_domain);
	char *buf = malloc(n);
	assert_non_null(buf);
	for (size_t len = 0; len <= n; len += 3) {
		memcpy(buf, full_domain, len);
		struct vm_spec vm;
		char err[128];
		if (domain_parse_xml(&vm, buf, len, err, sizeof(err)) == 0)
			vm_spec_free(&vm);
	}
	static const char subs[] = "<>/'\"&= ";
	for (size_t pos = 0; pos < n; pos += 2)
		for (size_t s = 0; s < sizeof(subs) - 1; s++) {
			memcpy(buf, full_domain, n);
			buf[pos] = subs[s];
			struct vm_spec vm;
			char err[128];
			if (domain_parse_xml(&vm, buf, n, err, sizeof(err)) == 0)
				vm_spec_free(&vm);
		}
	free(buf);
}

static void test_qemu_cmdline(void **state)
{
	(void)state;
	const char *cmd =
		"/usr/bin/qemu-system-x86_64 -name guest=vm1,debug-threads=on -machine q35,accel=kvm \\\n"
		"  -m 2G -smp 2 \\\n"
		"  -drive file=/var/lib/vm/a,,b.img,if=virtio,format=raw,cache=none \\\n"
		"  -drive 'file=iscsi://10.78.0.10/iqn.2026-11.io.ringstor:test/1,if=none,id=d1' \\\n"
		"  -drive file=/iso/x.iso,media=cdrom \\\n"
		"  -hdb /dev/sdb \\\n"
		"  -blockdev driver=file,node-name=f1,filename=/images/b.qcow2 \\\n"
		"  -blockdev driver=iscsi,transport=tcp,portal=san:3260,target=iqn.x:y,lun=3,node-name=i1 \\\n"
		"  -blockdev '{\"driver\":\"qcow2\",\"node-name\":\"q\",\"file\":{\"driver\":\"host_device\","
		"\"filename\":\"/dev/mapper/vg-vm\"}}' \\\n"
		"  -blockdev '{\"driver\":\"nfs\",\"server\":{\"type\":\"inet\",\"host\":\"filer\"},"
		"\"path\":\"/exp/c.img\"}' \\\n"
		"  --netdev bridge,id=n0,br=br-vm -device virtio-net,netdev=n0 \\\n"
		"  -nic bridge \\\n"
		"  -netdev tap,id=n1,ifname=tap0\n";
	struct vm_spec vm;
	char err[256] = "";
	assert_int_equal(domain_parse_qemu_cmdline(&vm, cmd, strlen(cmd), err, sizeof(err)), 0);
	assert_string_equal(vm.name, "vm1");
	assert_true(vm.mem_known);
	assert_true(vm.memory_kib == 2u << 20);
	assert_int_equal(vm.ndisks, 7);
	assert_string_equal(vm.disks[0], "/var/lib/vm/a,b.img");
	assert_string_equal(vm.disks[1], "iscsi://10.78.0.10/iqn.2026-11.io.ringstor:test/1");
	assert_string_equal(vm.disks[2], "/dev/sdb");
	assert_string_equal(vm.disks[3], "/images/b.qcow2");
	assert_string_equal(vm.disks[4], "iscsi://san:3260/iqn.x:y/3");
	assert_string_equal(vm.disks[5], "/dev/mapper/vg-vm");
	assert_string_equal(vm.disks[6], "nfs://filer/exp/c.img");
	assert_int_equal(vm.nbridges, 2);
	assert_string_equal(vm.bridges[0], "br-vm");
	assert_string_equal(vm.bridges[1], "br0");
	vm_spec_free(&vm);

	/* /proc/PID/cmdline form: NUL-separated, a bare -m in MiB */
	const char proc[] = "qemu-system-x86_64\0-m\0001024\0-hda\0/img/x y.raw\0-name\0plain\0";
	assert_int_equal(domain_parse_qemu_cmdline(&vm, proc, sizeof(proc) - 1, err, sizeof(err)), 0);
	assert_true(vm.memory_kib == 1024 * 1024);
	assert_int_equal(vm.ndisks, 1);
	assert_string_equal(vm.disks[0], "/img/x y.raw");
	assert_string_equal(vm.name, "plain");
	vm_spec_free(&vm);

	/* -m size=... form */
	const char *m = "qemu -m size=512M,slots=4,maxmem=8G";
	assert_int_equal(domain_parse_qemu_cmdline(&vm, m, strlen(m), err, sizeof(err)), 0);
	assert_true(vm.memory_kib == 512 * 1024);
	vm_spec_free(&vm);

	/* errors */
	const char *bad1 = "qemu -m lots";
	assert_int_equal(domain_parse_qemu_cmdline(&vm, bad1, strlen(bad1), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "-m"));
	const char *bad2 = "qemu -drive 'file=x";
	assert_int_equal(domain_parse_qemu_cmdline(&vm, bad2, strlen(bad2), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "quotes"));
	/* a trailing option without its argument is ignored, not read past */
	const char *trail = "qemu -drive";
	assert_int_equal(domain_parse_qemu_cmdline(&vm, trail, strlen(trail), err, sizeof(err)), 0);
	assert_int_equal(vm.ndisks, 0);
	vm_spec_free(&vm);
}

static void test_size_units(void **state)
{
	(void)state;
	uint64_t b;
	assert_true(parse_size_unit("10", NULL, 1024, &b));
	assert_true(b == 10240);
	assert_true(parse_size_unit("3G", NULL, 1 << 20, &b));
	assert_true(b == 3ull << 30);
	assert_true(parse_size_unit(" 7 ", "MiB", 1, &b));
	assert_true(b == 7u << 20);
	assert_false(parse_size_unit("", NULL, 1, &b));
	assert_false(parse_size_unit("-1", NULL, 1, &b));
	assert_false(parse_size_unit("1X", NULL, 1, &b));
	assert_false(parse_size_unit("1 G G", NULL, 1, &b));
	assert_false(parse_size_unit("18446744073709551615", "KiB", 1, &b));
	assert_false(parse_size_unit(NULL, NULL, 1, &b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xml_full),
		cmocka_unit_test(test_xml_memory_units),
		cmocka_unit_test(test_xml_rejects),
		cmocka_unit_test(test_xml_fuzz_no_crash),
		cmocka_unit_test(test_qemu_cmdline),
		cmocka_unit_test(test_size_units),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
