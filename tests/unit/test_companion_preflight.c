/* test_companion_preflight.c - preflight's fingerprint probes
 * (companion/preflight.c, compare.c) end to end on a local image, with the
 * order of the probes controlled by a fake remote shell.
 *
 * The source's and the destination's first probes run at the same time,
 * so with a VM that writes in bursts one write can fall between the
 * destination's read of a sample and the source's: the fingerprints differ
 * although the storage is the same.  preflight then probes the destination
 * again and then the source, one after the other; a sample the source read
 * the same before and after the destination's second read did not change
 * in between, so only a difference there is real.  Cases:
 *   - one write just before the source's first probe (after the
 *     destination's), none later: PASS (it used to FAIL: "content differs
 *     in 1 of N samples that are stable on the source");
 *   - a VM that keeps writing one sample during every probe: WARN;
 *   - nothing written: PASS at once, no second probes;
 * and the order of the probes: the two first ones, then the destination,
 * then the source.  The "hosts" are this machine (same boot id, same
 * inode: the same file); the remote ringstor-migrate is this program
 * itself (argv[1] == "probe"), which probes like `ringstor-migrate probe
 * --json`.  Linked with libcompanion.a. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "companion/preflight.h"
#include "companion/probe.h"

static char dir[64];
static char self[4096];

/* `SELF probe --json --disk PATH...`: the remote probe. */
static int act_as_probe(int argc, char **argv)
{
	struct probe_host h = {0};
	probe_host_collect(&h, NULL);
	h.disks = calloc((size_t)argc, sizeof(*h.disks));
	if (!h.disks)
		return 2;
	for (int i = 2; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--disk") != 0)
			continue;
		probe_disk_run(&h.disks[h.ndisks++], argv[i + 1], NULL);
		i++;
	}
	char *t = probe_to_json(&h);
	if (!t)
		return 2;
	fputs(t, stdout);
	free(t);
	probe_host_free(&h);
	return 0;
}

static void write_file(const char *name, const char *text, mode_t mode)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	if (!f)
		fail_msg("%s: %s", p, strerror(errno));
	fputs(text, f);
	fclose(f);
	chmod(p, mode);
}

static char *read_text(const char *name)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "r");
	static char buf[16384];
	buf[0] = '\0';
	if (!f)
		return buf;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* rsh HOST WORDS...: logs HOST as it starts and as the probe ends ("HOST+",
 * "HOST-"); MODE=once: before the source's first probe, 0.5 s late, "the
 * VM" writes 4 KiB once into the image; MODE=busy: a writer changes the
 * image's first sample every 20 ms while the probes run, and the source's
 * first probe starts 0.2 s late (so that the first two reads differ). */
static const char fake_rsh[] =
	"#!/bin/bash\n"
	"h=$1; shift; D=$(dirname \"$0\")\n"
	"echo \"$h+\" >>\"$D/order\"\n"
	"if [ \"${MODE:-}\" = once ] && [ $h = src ] && mkdir \"$D/once\" 2>/dev/null; then\n"
	"    sleep 0.5; head -c 4096 /dev/urandom | dd of=\"$D/img\" bs=4096 seek=0 conv=notrunc status=none\n"
	"fi\n"
	"[ \"${MODE:-}\" = busy ] && [ $h = src ] && mkdir \"$D/once\" 2>/dev/null && sleep 0.2\n"
	"\"$@\"; rc=$?\n"
	"echo \"$h-\" >>\"$D/order\"\n"
	"exit $rc\n";

static const char busy_writer[] =
	"#!/bin/bash\n"
	"D=$(dirname \"$0\"); i=0\n"
	"while [ -f \"$D/busy\" ]; do i=$((i + 1))\n"
	"    printf '%08d' $i | dd of=\"$D/img\" bs=8 seek=64 conv=notrunc status=none; sleep 0.02\n"
	"done\n";

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_preflight.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	write_file("rsh", fake_rsh, 0755);
	write_file("busy.sh", busy_writer, 0755);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Runs preflight on a fresh 8 MiB image; returns its exit code, the
 * fingerprint line in fp, the probe order in order. */
static int run_preflight(const char *mode, char *fp, size_t fplen, char *order, size_t olen)
{
	char p[256], img[256], rsh[256], once[256];
	snprintf(img, sizeof(img), "%s/img", dir);
	snprintf(rsh, sizeof(rsh), "%s/rsh", dir);
	snprintf(once, sizeof(once), "%s/once", dir);
	rmdir(once);
	snprintf(p, sizeof(p), "%s/order", dir);
	unlink(p);
	int fd = open(img, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	static char buf[8 << 20];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 7 + i / 4096);
	assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(fd);
	setenv("MODE", mode, 1);
	pid_t busy = -1;
	if (strcmp(mode, "busy") == 0) {
		write_file("busy", "", 0644);
		busy = fork();
		assert_true(busy >= 0);
		if (busy == 0) {
			char b[256];
			snprintf(b, sizeof(b), "%s/busy.sh", dir);
			execl("/bin/bash", "bash", b, (char *)NULL);
			_exit(127);
		}
		usleep(100 * 1000);
	}
	char *disks[] = { img };
	struct preflight_opts o = {
		.source = "src", .dest = "dst", .rsh = rsh, .remote_cmd = self, .disks = disks, .ndisks = 1,
		.timeout_s = 60,
	};
	snprintf(p, sizeof(p), "%s/out", dir);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	int rc = preflight_run(&o, f, f);
	fclose(f);
	if (busy > 0) {
		snprintf(p, sizeof(p), "%s/busy", dir);
		unlink(p);
		waitpid(busy, NULL, 0);
	}
	const char *out = read_text("out");
	const char *l = strstr(out, "fingerprint[0]");
	fp[0] = '\0';
	if (l) {
		while (l > out && l[-1] != '\n')
			l--;
		snprintf(fp, fplen, "%.*s", (int)strcspn(l, "\n"), l);
	}
	snprintf(order, olen, "%s", read_text("order"));
	for (char *c = order; *c; c++)
		if (*c == '\n')
			*c = ' ';
	if (!l)
		fail_msg("no fingerprint line in:\n%s", out);
	return rc;
}

/* The first two probes overlap (both start before either ends), then
 * "dst+ dst- src+ src-" when probed again. */
static void want_order(const char *order, bool again)
{
	char a[16][8];
	int n = 0;
	char tmp[256];
	snprintf(tmp, sizeof(tmp), "%s", order);
	for (char *s = strtok(tmp, " "); s && n < 16; s = strtok(NULL, " "))
		snprintf(a[n++], sizeof(a[0]), "%s", s);
	if (n != (again ? 8 : 4))
		fail_msg("probe order '%s': want %d events", order, again ? 8 : 4);
	if (!strchr(a[0], '+') || !strchr(a[1], '+'))
		fail_msg("probe order '%s': the first two probes do not run at once", order);
	if (again && strcmp(a[4], "dst+") | strcmp(a[5], "dst-") | strcmp(a[6], "src+") | strcmp(a[7], "src-"))
		fail_msg("probe order '%s': the second probes must be the destination, then the source", order);
}

static void test_write_between_first_probes(void **state)
{
	(void)state;
	char fp[1024], order[256];
	int rc = run_preflight("once", fp, sizeof(fp), order, sizeof(order));
	if (rc != 0 || strncmp(fp, "PASS", 4) != 0 || !strstr(fp, "when probed again"))
		fail_msg("exit %d, %s\n%s", rc, fp, read_text("out"));
	want_order(order, true);
}

static void test_busy_writer(void **state)
{
	(void)state;
	char fp[1024], order[256];
	int rc = run_preflight("busy", fp, sizeof(fp), order, sizeof(order));
	/* the writer changes sample 0 all the time: it differs at once, then
	 * between the source's probes; everything else matches */
	if (rc != 0 || strncmp(fp, "WARN", 4) != 0 || !strstr(fp, "1 of 66 samples changed on the source"))
		fail_msg("exit %d, %s\n%s", rc, fp, read_text("out"));
	want_order(order, true);
}

static void test_quiet(void **state)
{
	(void)state;
	char fp[1024], order[256];
	int rc = run_preflight("", fp, sizeof(fp), order, sizeof(order));
	if (rc != 0 || strncmp(fp, "PASS", 4) != 0 || !strstr(fp, "same sha256"))
		fail_msg("exit %d, %s\n%s", rc, fp, read_text("out"));
	want_order(order, false);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "probe") == 0)
		return act_as_probe(argc, argv);
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return 1;
	self[n] = '\0';
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quiet),
		cmocka_unit_test(test_write_between_first_probes),
		cmocka_unit_test(test_busy_writer),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
