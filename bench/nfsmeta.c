/* nfsmeta.c - NFSv3 metadata workload for the benchmark harness (issue 6).
 *
 *   nfsmeta SERVER EXPORT [NFILES] [DIR]
 *
 * Mounts EXPORT from SERVER with libnfs (MOUNT v3 + NFSv3, ports found through
 * the portmapper on 111, exactly like QEMU's nfs:// driver), then, inside a
 * fresh directory DIR (default "nfsmeta.<pid>"):
 *
 *   create   NFILES empty files   (CREATE, one RPC at a time: nfs_creat)
 *   stat     each of them         (LOOKUP + GETATTR: nfs_stat64)
 *   list     the directory        (READDIRPLUS: nfs_opendir reads it whole)
 *   remove   each of them         (REMOVE: nfs_unlink)
 *
 * and prints one line per phase, machine-readable, for bench/run.py:
 *
 *   phase=create n=50000 seconds=3.141593 ops_per_s=15915.5
 *
 * The sync API keeps exactly one request in flight, so this measures the
 * server's per-operation latency on each metadata path; both servers see the
 * same request stream.  The directory cache of libnfs is disabled so that the
 * listing really goes to the server.  Exit status 0 only if every operation
 * succeeded and the listing returned exactly NFILES entries (plus . and ..).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *phase, long n, double secs)
{
	printf("phase=%s n=%ld seconds=%.6f ops_per_s=%.1f\n", phase, n, secs,
	       secs > 0 ? (double)n / secs : 0.0);
	fflush(stdout);
}

static void name_of(char *buf, size_t len, const char *dir, long i)
{
	snprintf(buf, len, "%s/f%07ld", dir, i);
}

int main(int argc, char **argv)
{
	struct nfs_context *nfs;
	char dir[256], path[512];
	long n = 50000, i, seen = 0;
	double t0;
	int rc = 0;

	if (argc < 3 || argc > 5) {
		fprintf(stderr, "usage: %s SERVER EXPORT [NFILES] [DIR]\n", argv[0]);
		return 2;
	}
	if (argc >= 4) {
		char *end;

		n = strtol(argv[3], &end, 10);
		if (*end || n < 1 || n > 10000000) {
			fprintf(stderr, "nfsmeta: bad file count '%s'\n", argv[3]);
			return 2;
		}
	}
	if (argc == 5)
		snprintf(dir, sizeof(dir), "/%s", argv[4]);
	else
		snprintf(dir, sizeof(dir), "/nfsmeta.%ld", (long)getpid());

	nfs = nfs_init_context();
	if (!nfs) {
		fprintf(stderr, "nfsmeta: nfs_init_context failed\n");
		return 1;
	}
	nfs_set_dircache(nfs, 0);
	/* A dead server must fail the run, not hang it (run.py also has a timeout). */
	nfs_set_timeout(nfs, 30000);
	if (nfs_mount(nfs, argv[1], argv[2]) != 0) {
		fprintf(stderr, "nfsmeta: mount %s:%s: %s\n", argv[1], argv[2], nfs_get_error(nfs));
		nfs_destroy_context(nfs);
		return 1;
	}
	if (nfs_mkdir(nfs, dir) != 0) {
		fprintf(stderr, "nfsmeta: mkdir %s: %s\n", dir, nfs_get_error(nfs));
		nfs_destroy_context(nfs);
		return 1;
	}

	t0 = now();
	for (i = 0; i < n; i++) {
		struct nfsfh *fh;

		name_of(path, sizeof(path), dir, i);
		if (nfs_creat(nfs, path, 0644, &fh) != 0) {
			fprintf(stderr, "nfsmeta: create %s: %s\n", path, nfs_get_error(nfs));
			rc = 1;
			n = i;
			break;
		}
		nfs_close(nfs, fh);
	}
	report("create", n, now() - t0);

	t0 = now();
	for (i = 0; i < n && rc == 0; i++) {
		struct nfs_stat_64 st;

		name_of(path, sizeof(path), dir, i);
		if (nfs_stat64(nfs, path, &st) != 0) {
			fprintf(stderr, "nfsmeta: stat %s: %s\n", path, nfs_get_error(nfs));
			rc = 1;
		}
	}
	report("stat", n, now() - t0);

	if (rc == 0) {
		struct nfsdir *d;
		struct nfsdirent *de;

		t0 = now();
		if (nfs_opendir(nfs, dir, &d) != 0) {
			fprintf(stderr, "nfsmeta: opendir %s: %s\n", dir, nfs_get_error(nfs));
			rc = 1;
		} else {
			while ((de = nfs_readdir(nfs, d)) != NULL)
				if (strcmp(de->name, ".") && strcmp(de->name, ".."))
					seen++;
			nfs_closedir(nfs, d);
			report("list", seen, now() - t0);
			if (seen != n) {
				fprintf(stderr, "nfsmeta: listing returned %ld entries, expected %ld\n",
					seen, n);
				rc = 1;
			}
		}
	}

	/* Remove even after a failure, so that a rerun starts clean. */
	t0 = now();
	for (i = 0; i < n; i++) {
		name_of(path, sizeof(path), dir, i);
		if (nfs_unlink(nfs, path) != 0) {
			fprintf(stderr, "nfsmeta: remove %s: %s\n", path, nfs_get_error(nfs));
			rc = 1;
			break;
		}
	}
	report("remove", i, now() - t0);
	if (nfs_rmdir(nfs, dir) != 0) {
		fprintf(stderr, "nfsmeta: rmdir %s: %s\n", dir, nfs_get_error(nfs));
		rc = 1;
	}
	nfs_umount(nfs);
	nfs_destroy_context(nfs);
	return rc;
}
