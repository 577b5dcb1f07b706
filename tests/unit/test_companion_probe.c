/* test_companion_probe.c - the sample plan and fingerprint
 * (companion/fingerprint.c), the host-fact parsers (companion/probe_host.c)
 * and the local-path disk probe (companion/probe_disk_local.c).
 * iSCSI and NFS probes are exercised by tests/integration/test_migrate_preflight.sh;
 * here they are stubs so this test needs no libiscsi. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "companion/fingerprint.c"
#include "companion/json.c"
#include "companion/probe_disk_local.c"
#include "companion/probe_host.c"
#include "companion/run.c"

int probe_disk_iscsi(struct probe_disk *d, const char *initiator_name)
{
	(void)initiator_name;
	set_error(&d->error, "stub");
	return -1;
}

int probe_disk_nfs(struct probe_disk *d)
{
	set_error(&d->error, "stub");
	return -1;
}

static void test_plan_small_images(void **state)
{
	(void)state;
	struct sample_plan p;
	sample_plan_make(0, &p);
	assert_int_equal(p.n, 0);
	sample_plan_make(1, &p);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.off[0], 0);
	assert_int_equal(p.len[0], 1);
	/* up to FP_WHOLE_MAX: every byte, in FP_SAMPLE_LEN chunks */
	sample_plan_make(FP_SAMPLE_LEN * 3 + 5, &p);
	assert_int_equal(p.n, 4);
	assert_int_equal(p.off[3], FP_SAMPLE_LEN * 3);
	assert_int_equal(p.len[3], 5);
	sample_plan_make(FP_WHOLE_MAX, &p);
	assert_int_equal(p.n, FP_MAX_SAMPLES);
	uint64_t covered = 0;
	for (unsigned i = 0; i < p.n; i++)
		covered += p.len[i];
	assert_true(covered == FP_WHOLE_MAX);
}

static void test_plan_large_images(void **state)
{
	(void)state;
	static const uint64_t sizes[] = {
		FP_WHOLE_MAX + 1, FP_WHOLE_MAX + 4096, 1ull << 30, (1ull << 30) + 512, 10ull << 40,
		UINT64_MAX - 511, 0xfffffffffffff000ull,
	};
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct sample_plan p;
		uint64_t size = sizes[k];
		sample_plan_make(size, &p);
		assert_int_equal(p.n, FP_MAX_SAMPLES);
		assert_int_equal(p.off[0], 0);
		/* the last sample ends exactly at the end of the image */
		assert_true(p.off[p.n - 1] + p.len[p.n - 1] == size);
		for (unsigned i = 0; i < p.n; i++) {
			assert_int_equal(p.len[i], FP_SAMPLE_LEN);
			assert_true(p.off[i] + p.len[i] <= size);
			/* spread samples are aligned */
			if (i > 0 && i < p.n - 1)
				assert_int_equal(p.off[i] % FP_ALIGN, 0);
			/* strictly increasing and never overlapping */
			if (i > 0)
				assert_true(p.off[i] >= p.off[i - 1] + p.len[i - 1]);
		}
		/* deterministic: the same size gives the same plan */
		struct sample_plan q;
		sample_plan_make(size, &q);
		assert_memory_equal(&p, &q, sizeof(p));
	}
	/* a fixed point so the plan can never drift silently between versions
	 * (both hosts must compute identical offsets) */
	struct sample_plan p;
	sample_plan_make(1ull << 30, &p);
	assert_int_equal(p.off[1], 16515072);
	assert_int_equal(p.off[64], 1057157120);
	assert_int_equal(p.off[65], (1ull << 30) - FP_SAMPLE_LEN);
	char d[128];
	sample_plan_describe(&p, d, sizeof(d));
	assert_string_equal(d, "sha256-v1 size=1073741824 first+64 even(align 4096)+last x 65536 bytes (66)");
}

static void test_fingerprint_buffer(void **state)
{
	(void)state;
	size_t size = 8u << 20;
	unsigned char *img = malloc(size);
	assert_non_null(img);
	for (size_t i = 0; i < size; i++)
		img[i] = (unsigned char)(i * 2654435761u >> 13);
	struct fingerprint a, b;
	assert_int_equal(fingerprint_buffer(img, size, &a), 0);
	assert_true(a.valid);
	assert_int_equal(strlen(a.sha256), 64);
	assert_int_equal(fingerprint_buffer(img, size, &b), 0);
	assert_string_equal(a.sha256, b.sha256);
	assert_int_equal(fingerprint_diff(&a, &b, NULL), 0);

	/* a byte inside sample 5 changes that sample and the digest */
	img[a.sp.off[5] + 100] ^= 1;
	assert_int_equal(fingerprint_buffer(img, size, &b), 0);
	assert_string_not_equal(a.sha256, b.sha256);
	uint64_t first = 0;
	assert_int_equal(fingerprint_diff(&a, &b, &first), 1);
	assert_true(first == a.sp.off[5]);
	img[a.sp.off[5] + 100] ^= 1;

	/* a byte between samples is (by design) invisible */
	img[a.sp.off[5] + FP_SAMPLE_LEN + 10] ^= 1;
	assert_int_equal(fingerprint_buffer(img, size, &b), 0);
	assert_string_equal(a.sha256, b.sha256);

	/* a different size means a different plan: not comparable */
	assert_int_equal(fingerprint_buffer(img, size - 4096, &b), 0);
	assert_int_equal(fingerprint_diff(&a, &b, NULL), UINT_MAX);

	/* a known answer: SHA-256 over (offset 0, length 3, "abc") */
	assert_int_equal(fingerprint_buffer("abc", 3, &b), 0);
	assert_int_equal(b.sp.n, 1);
	assert_string_equal(b.sample[0], "ba7816bf8f01cfea"); /* SHA-256("abc"), FIPS 180-2 B.1 */
	free(img);
}

static int failing_read(void *ctx, void *buf, uint32_t len, uint64_t off, char *err, size_t errlen)
{
	(void)ctx; (void)buf; (void)len;
	snprintf(err, errlen, "boom at %llu", (unsigned long long)off);
	return -1;
}

static void test_fingerprint_read_error(void **state)
{
	(void)state;
	struct fingerprint f;
	char err[64];
	assert_int_equal(fingerprint_compute(1 << 20, failing_read, NULL, &f, err, sizeof(err)), -1);
	assert_false(f.valid);
	assert_string_equal(err, "boom at 0");
}

static void test_parse_cpuinfo(void **state)
{
	(void)state;
	struct probe_host h = {0};
	probe_parse_cpuinfo(&h, "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7763\n"
				"flags\t\t: fpu vme sse2 avx2 sse2\n\nprocessor\t: 1\nmodel name\t: other\n"
				"flags\t\t: fpu\n");
	assert_string_equal(h.cpu_model, "AMD EPYC 7763");
	assert_int_equal(h.ncpu_flags, 4); /* first CPU's flags, deduplicated */
	assert_string_equal(h.cpu_flags[3], "avx2");
	probe_host_free(&h);

	/* arm64: "Features", no model name */
	probe_parse_cpuinfo(&h, "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes\n"
				"CPU implementer\t: 0x41\n");
	assert_null(h.cpu_model);
	assert_int_equal(h.ncpu_flags, 4);
	assert_string_equal(h.cpu_flags[0], "fp");
	probe_host_free(&h);

	probe_parse_cpuinfo(&h, "");
	assert_int_equal(h.ncpu_flags, 0);
	probe_parse_cpuinfo(&h, "garbage without colon\n:\n: :\nflags:\n");
	assert_int_equal(h.ncpu_flags, 0);
	probe_host_free(&h);
}

static void test_parse_meminfo(void **state)
{
	(void)state;
	uint64_t kib = 0;
	assert_true(probe_parse_meminfo("MemTotal:       32768000 kB\nMemFree:  100 kB\nMemAvailable:   24139368 kB\n",
					&kib));
	assert_true(kib == 24139368);
	assert_false(probe_parse_meminfo("MemTotal: 1 kB\n", &kib));
	assert_false(probe_parse_meminfo("MemAvailable: x kB\n", &kib));
	assert_false(probe_parse_meminfo(NULL, &kib));
}

static void test_subnet(void **state)
{
	(void)state;
	char out[64];
	assert_true(probe_subnet(4, "10.77.0.2", 24, out, sizeof(out)));
	assert_string_equal(out, "10.77.0.0/24");
	assert_true(probe_subnet(4, "192.168.1.129", 25, out, sizeof(out)));
	assert_string_equal(out, "192.168.1.128/25");
	assert_true(probe_subnet(4, "1.2.3.4", 0, out, sizeof(out)));
	assert_string_equal(out, "0.0.0.0/0");
	assert_true(probe_subnet(4, "1.2.3.4", 32, out, sizeof(out)));
	assert_string_equal(out, "1.2.3.4/32");
	assert_true(probe_subnet(6, "fd00::2", 64, out, sizeof(out)));
	assert_string_equal(out, "fd00::/64");
	assert_true(probe_subnet(6, "2001:db8:1:2:3:4:5:6", 52, out, sizeof(out)));
	assert_string_equal(out, "2001:db8:1::/52");
	assert_false(probe_subnet(4, "10.0.0.1", 33, out, sizeof(out)));
	assert_false(probe_subnet(6, "10.0.0.1", 24, out, sizeof(out)));
	assert_false(probe_subnet(4, "fd00::1", 24, out, sizeof(out)));
	assert_false(probe_subnet(5, "10.0.0.1", 24, out, sizeof(out)));
}

static void test_collect_with_root(void **state)
{
	(void)state;
	char root[] = "/tmp/rsm-probe-root.XXXXXX";
	assert_non_null(mkdtemp(root));
	char p[256];
	snprintf(p, sizeof(p), "mkdir -p %s/proc/sys/kernel/random %s/sys/class/net/br7/bridge %s/sys/class/net/eth0 "
		 "%s/sys/class/net/br1/bridge %s/dev", root, root, root, root, root);
	assert_int_equal(system(p), 0);
	snprintf(p, sizeof(p), "%s/proc/cpuinfo", root);
	FILE *f = fopen(p, "w");
	fputs("model name : Test CPU\nflags : a b c\n", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/proc/meminfo", root);
	f = fopen(p, "w");
	fputs("MemAvailable: 2048 kB\n", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/proc/sys/kernel/random/boot_id", root);
	f = fopen(p, "w");
	fputs("  abc-123\n", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/dev/kvm", root);
	f = fopen(p, "w");
	fclose(f);

	struct probe_host h = {0};
	probe_host_collect(&h, root);
	assert_string_equal(h.cpu_model, "Test CPU");
	assert_int_equal(h.ncpu_flags, 3);
	assert_true(h.mem_known);
	assert_true(h.mem_available_kib == 2048);
	assert_string_equal(h.boot_id, "abc-123");
	assert_true(h.kvm);
	assert_false(h.xen);
	assert_int_equal(h.nbridges, 2);
	assert_string_equal(h.bridges[0], "br1"); /* sorted */
	assert_string_equal(h.bridges[1], "br7");
	assert_non_null(h.arch);
	probe_host_free(&h);
	snprintf(p, sizeof(p), "rm -rf %s", root);
	assert_int_equal(system(p), 0);
}

static void test_local_disk(void **state)
{
	(void)state;
	char dir[] = "/tmp/rsm-probe-disk.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256], link[256];
	snprintf(path, sizeof(path), "%s/vm.img", dir);
	snprintf(link, sizeof(link), "%s/link.img", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	static unsigned char buf[1 << 20];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i % 251);
	for (int k = 0; k < 6; k++)
		assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(fd);
	assert_int_equal(symlink(path, link), 0);

	struct probe_disk a, b;
	assert_int_equal(probe_disk_run(&a, path, NULL), 0);
	assert_null(a.error);
	assert_int_equal(a.kind, DISK_LOCAL);
	assert_true(a.size == 6u << 20);
	assert_string_equal(a.realpath, path);
	assert_non_null(a.device);
	assert_true(a.inode != 0);
	assert_non_null(a.mount_source);
	assert_non_null(a.fstype);
	assert_true(a.fp.valid);
	/* through a symlink: same file, same fingerprint, canonical path */
	assert_int_equal(probe_disk_run(&b, link, NULL), 0);
	assert_string_equal(b.realpath, path);
	assert_true(b.inode == a.inode);
	assert_string_equal(b.fp.sha256, a.fp.sha256);
	probe_disk_free(&b);

	/* the kind follows the URL scheme */
	assert_int_equal(probe_disk_kind("ISCSI://h/iqn.x/1"), DISK_ISCSI);
	assert_int_equal(probe_disk_kind("nfs://h/e/f"), DISK_NFS);
	assert_int_equal(probe_disk_kind("/dev/sda"), DISK_LOCAL);
	assert_int_equal(probe_disk_run(&b, "iscsi://h/iqn.x/1", NULL), -1);
	assert_string_equal(b.error, "stub");
	probe_disk_free(&b);

	/* missing file, directory: errors, not crashes */
	snprintf(link, sizeof(link), "%s/missing.img", dir);
	assert_int_equal(probe_disk_run(&b, link, NULL), -1);
	assert_non_null(strstr(b.error, "No such file"));
	probe_disk_free(&b);
	assert_int_equal(probe_disk_run(&b, dir, NULL), -1);
	assert_non_null(strstr(b.error, "neither a regular file nor a block device"));
	probe_disk_free(&b);

	/* an empty image has an (empty) fingerprint */
	snprintf(link, sizeof(link), "%s/empty.img", dir);
	fd = open(link, O_WRONLY | O_CREAT, 0600);
	close(fd);
	assert_int_equal(probe_disk_run(&b, link, NULL), 0);
	assert_true(b.fp.valid);
	assert_int_equal(b.fp.sp.n, 0);
	probe_disk_free(&b);
	probe_disk_free(&a);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_unescape_and_mount_prefix(void **state)
{
	(void)state;
	char s[] = "/mnt/with\\040space\\134x";
	unescape_octal(s);
	assert_string_equal(s, "/mnt/with space\\x");
	assert_true(path_under("/var/lib/x", "/"));
	assert_true(path_under("/var/lib/x", "/var/lib"));
	assert_true(path_under("/var/lib", "/var/lib"));
	assert_false(path_under("/var/library", "/var/lib"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_small_images),
		cmocka_unit_test(test_plan_large_images),
		cmocka_unit_test(test_fingerprint_buffer),
		cmocka_unit_test(test_fingerprint_read_error),
		cmocka_unit_test(test_parse_cpuinfo),
		cmocka_unit_test(test_parse_meminfo),
		cmocka_unit_test(test_subnet),
		cmocka_unit_test(test_collect_with_root),
		cmocka_unit_test(test_local_disk),
		cmocka_unit_test(test_unescape_and_mount_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
