/* nfsgw_driver.c - runs the NFS gateway on its own (reactors + nfsgw with
 * fixed settings) until SIGTERM/SIGINT, for the integration tests until
 * ringstord has the NFS options.  Built by tests/integration/test_nfs_mount.sh:
 *   cc -std=gnu11 -D_GNU_SOURCE -I. tests/nfsgw_driver.c build/libringstor.a \
 *      -luring -lconfig -lcrypto -lnfs -pthread
 * Usage: nfsgw_driver [--bind ADDR] [--nfs-port N] [--mount-port N]
 *        [--portmap-port N | --no-portmap] [--state-dir DIR] [--threads N]
 *        [--log-level L] --export 'PATH CLIENT(opts) ...' ...
 * Prints "READY" on stdout once every reactor serves. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/reactor.h"
#include "core/workpool.h"
#include "nfsgw/nfsgw.h"

struct rt {
	struct reactor r;
	pthread_t tid;
	int fds[NFSGW_MAX_FDS];
	int nfds;
	atomic_int state;   /* 1 started, 2 idle */
};

static void *run(void *arg)
{
	struct rt *t = arg;
	reactor_run(&t->r);
	return NULL;
}

static void start_on(void *arg)
{
	struct rt *t = arg;
	int ret = nfsgw_reactor_start(&t->r, t->fds, t->nfds);

	if (ret < 0)
		log_err("reactor %d: nfsgw_reactor_start: %s", t->r.id, strerror(-ret));
	atomic_store(&t->state, 1);
}

static void shutdown_on(void *arg)
{
	struct rt *t = arg;
	nfsgw_reactor_shutdown(&t->r);
}

static void idle_on(void *arg)
{
	struct rt *t = arg;
	atomic_store(&t->state, nfsgw_reactor_idle(&t->r) ? 2 : 1);
}

/* Per-reactor cleanup must run on the reactor's own thread, then stop it. */
static void fini_on(void *arg)
{
	struct rt *t = arg;
	nfsgw_reactor_fini();
	reactor_stop(&t->r);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bind", required_argument, NULL, 'b' },
		{ "nfs-port", required_argument, NULL, 'n' },
		{ "mount-port", required_argument, NULL, 'm' },
		{ "portmap-port", required_argument, NULL, 'p' },
		{ "no-portmap", no_argument, NULL, 'P' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 't' },
		{ "export", required_argument, NULL, 'e' },
		{ "log-level", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	struct nfsgw_settings s;
	const char *exports[64];
	int nexports = 0, threads = 2, c, level = RS_LOG_NOTICE;
	char err[512];
	sigset_t sigs;
	struct rt *rts;

	nfsgw_settings_default(&s);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b': snprintf(s.bind_addr, sizeof(s.bind_addr), "%s", optarg); break;
		case 'n': s.nfs_port = (uint16_t)atoi(optarg); break;
		case 'm': s.mount_port = (uint16_t)atoi(optarg); break;
		case 'p': s.portmap_port = (uint16_t)atoi(optarg); break;
		case 'P': s.portmap = 0; break;
		case 's': snprintf(s.state_dir, sizeof(s.state_dir), "%s", optarg); break;
		case 't': threads = atoi(optarg); break;
		case 'e': if (nexports < 64) exports[nexports++] = optarg; break;
		case 'l': level = rs_log_parse_level(optarg); break;
		default: return 2;
		}
	}
	if (threads < 1)
		threads = 1;
	rs_log_init("nfsgw-driver", true, level < 0 ? RS_LOG_NOTICE : (enum rs_log_level)level);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (int i = 0; i < nexports; i++) {
		if (nfsgw_add_export_line(exports[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "nfsgw_driver: --export '%s': %s\n", exports[i], err);
			return 1;
		}
	}
	if (workpool_init(0) < 0 || nfsgw_init(&s) < 0) {
		fprintf(stderr, "nfsgw_driver: initialisation failed\n");
		return 1;
	}
	rts = calloc((size_t)threads, sizeof(*rts));
	for (int i = 0; i < threads; i++) {
		if (reactor_init(&rts[i].r, i, 1024) < 0)
			return 1;
		rts[i].nfds = nfsgw_open_sockets(&s, rts[i].fds, NFSGW_MAX_FDS);
		if (rts[i].nfds < 0)
			return 1;
		reactor_post(&rts[i].r, start_on, &rts[i]);
		pthread_create(&rts[i].tid, NULL, run, &rts[i]);
	}
	for (int i = 0; i < threads; i++)
		while (atomic_load(&rts[i].state) != 1)
			sleep_ms(5);
	printf("READY portmap=%s\n", nfsgw_builtin_portmap() ? "builtin" : "external-or-none");
	fflush(stdout);

	for (;;) {
		int sig;
		if (sigwait(&sigs, &sig) == 0)
			break;
	}
	for (int i = 0; i < threads; i++)
		reactor_post(&rts[i].r, shutdown_on, &rts[i]);
	for (int waited = 0; waited < 5000; waited += 20) {
		int idle = 0;
		for (int i = 0; i < threads; i++)
			reactor_post(&rts[i].r, idle_on, &rts[i]);
		sleep_ms(20);
		for (int i = 0; i < threads; i++)
			idle += atomic_load(&rts[i].state) == 2;
		if (idle == threads)
			break;
	}
	for (int i = 0; i < threads; i++)
		reactor_post(&rts[i].r, fini_on, &rts[i]);
	for (int i = 0; i < threads; i++) {
		pthread_join(rts[i].tid, NULL);
		reactor_fini(&rts[i].r);
		for (int k = 0; k < rts[i].nfds; k++)
			close(rts[i].fds[k]);
	}
	nfsgw_shutdown();
	workpool_shutdown();
	free(rts);
	fprintf(stderr, "nfsgw_driver: stopped\n");
	return 0;
}
