/* main.c - ringstord: process setup, one io_uring reactor thread per CPU,
 * portals, the control socket, and clean shutdown on SIGTERM/SIGINT.
 *
 * Threads: N reactors (the data path, never blocking) + the control thread
 * (ringstoradm requests) + this main thread, which only waits for signals. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf/config.h"
#include "conf/reload.h"
#include "core/control.h"
#include "core/lease.h"
#include "core/log.h"
#include "core/reactor.h"
#include "core/sdnotify.h"
#include "core/state.h"
#include "core/stats.h"
#include "core/version.h"
#include "core/workpool.h"
#include "nfsgw/exports.h"
#include "nfsgw/nfsgw.h"
#include "target/iscsi.h"
#include "target/registry.h"
#include "target/scsi_pr.h"

#define DEFAULT_CONFIG  "/etc/ringstor/ringstor.conf"
#define DEFAULT_CONTROL "/run/ringstor/ringstord.sock"
#define DEFAULT_STATE_DIR "/var/lib/ringstor"
#define RING_ENTRIES    1024

struct reactor_thread {
	struct reactor r;
	pthread_t tid;
	atomic_int idle;        /* answer of the last idle poll: -1 unknown, 0 busy, 1 idle */
	int *listen_fds;
	int nlisten;
	int nfs_fds[NFSGW_MAX_FDS];
	int nnfs;
};

static bool nfs_on;

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ringstord [options]\n"
		"  -f, --foreground           stay in the foreground, log to stderr\n"
		"  -c, --config FILE          libconfig file (default " DEFAULT_CONFIG ")\n"
		"  -C, --control-socket PATH  control socket (default " DEFAULT_CONTROL ")\n"
		"      --iscsi-portal ADDR:PORT[,TPGT]  listen here (repeatable; overrides the config)\n"
		"      --prometheus HOST:PORT serve Prometheus metrics at http://HOST:PORT/metrics\n"
		"                             (default: daemon.prometheus; off when unset)\n"
		"      --state-dir DIR        persistent state: APTPL reservations, NFS handle key\n"
		"                             (default: daemon.state_dir or " DEFAULT_STATE_DIR ")\n"
		"  NFSv3 gateway (any of these enables it; so does nfs.enabled in the config):\n"
		"      --nfs-export 'PATH CLIENT(opts)...'  export in exports(5) syntax (repeatable)\n"
		"      --nfs-listen ADDR:PORT NFS and MOUNT (and NLM) here; repeatable, IPv6 as\n"
		"                             [::1]:2049 (default 0.0.0.0:2049; overrides nfs.listen)\n"
		"      --mount-port N         an extra MOUNT listener (TCP+UDP) on the listen\n"
		"                             addresses (default 20048; 0 = none)\n"
		"      --nlm-port N           an extra NLM listener likewise (default 32803)\n"
		"      --portmap ADDR:PORT    the built-in portmapper there (100000 v2-v4, TCP+UDP)\n"
		"      --portmap MODE         auto (rpcbind if one answers on 127.0.0.1:111, else\n"
		"                             built in on the listen addresses), builtin, rpcbind,\n"
		"                             off (default auto)\n"
		"      --no-portmap           no portmapper (libnfs ?nfsport=&mountport= URLs work)\n"
		"      --nfs-bind ADDR        older spelling: one listen address (with --nfs-port)\n"
		"      --nfs-port N           older spelling: the NFS port on --nfs-bind\n"
		"      --portmap-port N       portmapper port for auto/builtin/rpcbind (default 111)\n"
		"  -t, --threads N            reactor threads (default: online CPUs)\n"
		"  -l, --log-level LEVEL      error|warning|notice|info|debug\n"
		"      --check-config         validate the configuration and exit\n"
		"  -V, --version              print the version\n"
		"  -h, --help                 this text\n");
}

static int open_listener(const struct iscsi_portal *p)
{
	int one = 1;
	int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	/* SO_REUSEPORT: every reactor gets its own listening socket on the same
	 * portal and the kernel spreads connections among them, so a connection
	 * lives on one reactor without any hand-off between threads. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (p->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&p->addr, p->addrlen) < 0)
		goto fail;
	if (listen(fd, 1024) < 0)
		goto fail;
	return fd;
fail:;
	int err = -errno;
	close(fd);
	return err;
}

struct listen_task {
	struct reactor_thread *rt;
};

static void listen_on_reactor(void *arg)
{
	struct reactor_thread *rt = arg;
	for (int i = 0; i < rt->nlisten; i++) {
		int ret = iscsi_reactor_listen(&rt->r, rt->listen_fds[i]);
		if (ret < 0)
			log_err("reactor %d: cannot accept: %s", rt->r.id, strerror(-ret));
	}
	if (nfs_on) {
		int ret = nfsgw_reactor_start(&rt->r, rt->nfs_fds, rt->nnfs);
		if (ret < 0)
			log_err("reactor %d: NFS gateway: %s", rt->r.id, strerror(-ret));
	}
}

static void shutdown_on_reactor(void *arg)
{
	struct reactor_thread *rt = arg;
	iscsi_reactor_shutdown(&rt->r);
	if (nfs_on)
		nfsgw_reactor_shutdown(&rt->r);
}

/* Last task on a reactor: per-thread NFS state must be freed on its thread. */
static void stop_on_reactor(void *arg)
{
	struct reactor_thread *rt = arg;
	if (nfs_on)
		nfsgw_reactor_fini();
	reactor_stop(&rt->r);
}

static void poll_idle(void *arg)
{
	struct reactor_thread *rt = arg;
	bool idle = iscsi_reactor_idle(&rt->r) && (!nfs_on || nfsgw_reactor_idle(&rt->r));
	atomic_store(&rt->idle, idle ? 1 : 0);
}

static void *reactor_main(void *arg)
{
	struct reactor_thread *rt = arg;
	reactor_run(&rt->r);
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	enum { OPT_PORTAL = 256, OPT_CHECK, OPT_STATE_DIR, OPT_PROMETHEUS, OPT_NFS_EXPORT, OPT_NFS_BIND,
	       OPT_NFS_PORT, OPT_MOUNT_PORT, OPT_NLM_PORT, OPT_PORTMAP_PORT, OPT_PORTMAP,
	       OPT_NFS_LISTEN, OPT_NO_PORTMAP };
	static const struct option opts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "config", required_argument, NULL, 'c' },
		{ "control-socket", required_argument, NULL, 'C' },
		{ "iscsi-portal", required_argument, NULL, OPT_PORTAL },
		{ "threads", required_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "prometheus", required_argument, NULL, OPT_PROMETHEUS },
		{ "nfs-export", required_argument, NULL, OPT_NFS_EXPORT },
		{ "nfs-bind", required_argument, NULL, OPT_NFS_BIND },
		{ "nfs-port", required_argument, NULL, OPT_NFS_PORT },
		{ "mount-port", required_argument, NULL, OPT_MOUNT_PORT },
		{ "nlm-port", required_argument, NULL, OPT_NLM_PORT },
		{ "portmap-port", required_argument, NULL, OPT_PORTMAP_PORT },
		{ "portmap", required_argument, NULL, OPT_PORTMAP },
		{ "nfs-listen", required_argument, NULL, OPT_NFS_LISTEN },
		{ "no-portmap", no_argument, NULL, OPT_NO_PORTMAP },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL, *control_path = NULL, *log_level = NULL;
	const char *state_dir = NULL;
	const char *prometheus = NULL;
	const char *nfs_exports[64];
	int n_nfs_exports = 0;
	bool nfs_flag = false;
	struct nfsgw_settings nfs_cli;
	unsigned nfs_cli_set = 0;   /* which of nfs_cli's fields the flags set */
	struct iscsi_portal cli_portals[CONFIG_MAX_PORTALS];
	int ncli_portals = 0, threads = -1, c;
	bool foreground = false, check_only = false;
	static struct rs_config cfg;
	char err[512];

	nfsgw_settings_default(&nfs_cli);
	while ((c = getopt_long(argc, argv, "fc:C:t:l:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': foreground = true; break;
		case 'c': config_path = optarg; break;
		case 'C': control_path = optarg; break;
		case 't': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 256) {
				fprintf(stderr, "ringstord: --threads: expected 1..256, got '%s'\n", optarg);
				return 2;
			}
			threads = (int)v;
			break;
		}
		case 'l':
			if (rs_log_parse_level(optarg) < 0) {
				fprintf(stderr, "ringstord: --log-level: unknown level '%s'\n", optarg);
				return 2;
			}
			log_level = optarg;
			break;
		case OPT_PORTAL:
			if (ncli_portals == CONFIG_MAX_PORTALS) {
				fprintf(stderr, "ringstord: at most %d portals\n", CONFIG_MAX_PORTALS);
				return 2;
			}
			if (config_parse_portal(optarg, &cli_portals[ncli_portals], err, sizeof(err)) < 0) {
				fprintf(stderr, "ringstord: --iscsi-portal %s: %s\n", optarg, err);
				return 2;
			}
			ncli_portals++;
			break;
		case OPT_CHECK: check_only = true; break;
		case OPT_STATE_DIR: state_dir = optarg; break;
		case OPT_PROMETHEUS: prometheus = optarg; break;
		case OPT_NFS_EXPORT:
			if (n_nfs_exports == (int)(sizeof(nfs_exports) / sizeof(nfs_exports[0]))) {
				fprintf(stderr, "ringstord: too many --nfs-export\n");
				return 2;
			}
			nfs_exports[n_nfs_exports++] = optarg;
			nfs_flag = true;
			break;
		case OPT_NFS_BIND:
			if (strlen(optarg) >= sizeof(nfs_cli.bind_addr)) {
				fprintf(stderr, "ringstord: --nfs-bind: address too long\n");
				return 2;
			}
			strcpy(nfs_cli.bind_addr, optarg);
			nfs_cli_set |= 1;
			nfs_flag = true;
			break;
		case OPT_NFS_PORT:
		case OPT_MOUNT_PORT:
		case OPT_NLM_PORT:
		case OPT_PORTMAP_PORT: {
			char *end;
			long v = strtol(optarg, &end, 10);
			/* 0 = no listener of its own for MOUNT / NLM. */
			long min = c == OPT_MOUNT_PORT || c == OPT_NLM_PORT ? 0 : 1;
			if (!*optarg || *end || v < min || v > 65535) {
				fprintf(stderr, "ringstord: port: expected %ld..65535, got '%s'\n", min, optarg);
				return 2;
			}
			if (c == OPT_NFS_PORT) { nfs_cli.nfs_port = (uint16_t)v; nfs_cli_set |= 2; }
			if (c == OPT_MOUNT_PORT) { nfs_cli.mount_port = (uint16_t)v; nfs_cli_set |= 4; }
			if (c == OPT_NLM_PORT) { nfs_cli.nlm_port = (uint16_t)v; nfs_cli_set |= 8; }
			if (c == OPT_PORTMAP_PORT) { nfs_cli.portmap_port = (uint16_t)v; nfs_cli_set |= 16; }
			nfs_flag = true;
			break;
		}
		case OPT_NFS_LISTEN: {
			struct nfsgw_endpoint ep;
			if (nfsgw_parse_endpoint(optarg, &ep, err, sizeof(err)) < 0 ||
			    nfsgw_add_listen(&nfs_cli, &ep, err, sizeof(err)) < 0) {
				fprintf(stderr, "ringstord: --nfs-listen: %s\n", err);
				return 2;
			}
			nfs_cli_set |= 64;
			nfs_flag = true;
			break;
		}
		case OPT_NO_PORTMAP:
			nfs_cli.portmap = RS_NFS_PORTMAP_OFF;
			nfs_cli_set |= 32;
			nfs_flag = true;
			break;
		case OPT_PORTMAP: {
			static const char *modes[] = { "off", "auto", "rpcbind", "builtin" };
			int m = -1;
			/* ADDR:PORT (a colon) = the built-in portmapper there;
			 * otherwise one of the mode words. */
			if (strchr(optarg, ':')) {
				struct nfsgw_endpoint ep;
				if (nfsgw_parse_endpoint(optarg, &ep, err, sizeof(err)) < 0) {
					fprintf(stderr, "ringstord: --portmap: %s\n", err);
					return 2;
				}
				nfs_cli.portmap = RS_NFS_PORTMAP_BUILTIN;
				snprintf(nfs_cli.portmap_addr, sizeof(nfs_cli.portmap_addr), "%s", ep.addr);
				nfs_cli.portmap_port = ep.port;
				nfs_cli_set |= 32 | 16 | 128;
				nfs_flag = true;
				break;
			}
			for (int i = 0; i < 4; i++)
				if (!strcmp(optarg, modes[i]))
					m = i;
			if (m < 0) {
				fprintf(stderr, "ringstord: --portmap: expected ADDR:PORT or "
					"auto|builtin|rpcbind|off\n");
				return 2;
			}
			nfs_cli.portmap = m;
			nfs_cli_set |= 32;
			nfs_flag = true;
			break;
		}
		case 'V': printf("ringstord %s\n", RINGSTOR_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringstord: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	/* A missing *default* config means "start empty, configure with
	 * ringstoradm" like tgtd; a missing explicit one is an error. */
	if (!config_path && access(DEFAULT_CONFIG, F_OK) == 0)
		config_path = DEFAULT_CONFIG;
	if (config_path) {
		if (config_load(config_path, &cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "ringstord: %s\n", err);
			return 1;
		}
	} else if (config_load_string("", "(built-in empty)", &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "ringstord: %s\n", err);
		return 1;
	}
	if (check_only) {
		printf("%s: OK (%d targets, %d portals)\n", config_path ? config_path : "(none)",
		       cfg.ntargets, cfg.nportals);
		config_free(&cfg);
		return 0;
	}
	/* Reload (SIGHUP) re-reads this file: keep an absolute name. */
	static char config_abs[4096];
	if (config_path && realpath(config_path, config_abs))
		config_path = config_abs;

	if (!log_level && cfg.log_level[0])
		log_level = cfg.log_level;
	rs_log_init("ringstord", foreground,
		    log_level ? (enum rs_log_level)rs_log_parse_level(log_level) : RS_LOG_NOTICE);
	if (ncli_portals) {
		memcpy(cfg.portals, cli_portals, sizeof(cli_portals[0]) * ncli_portals);
		cfg.nportals = ncli_portals;
	}
	if (cfg.nportals == 0) {
		config_parse_portal("0.0.0.0:3260", &cfg.portals[0], err, sizeof(err));
		cfg.nportals = 1;
	}
	if (threads < 0)
		threads = cfg.threads > 0 ? cfg.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (threads < 1)
		threads = 1;
	if (!control_path)
		control_path = cfg.control_socket[0] ? cfg.control_socket : DEFAULT_CONTROL;
	if (!state_dir)
		state_dir = cfg.state_dir[0] ? cfg.state_dir : DEFAULT_STATE_DIR;
	scsi_pr_set_state_dir(state_dir);
	{
		char id[40];
		int ret = rs_appliance_id(state_dir, id, sizeof(id));
		if (ret < 0) {
			log_err("state directory %s: cannot read or create the appliance id: %s",
				state_dir, strerror(-ret));
			return 1;
		}
		reg_set_appliance_id(id);
	}
	/* Image leases fence writers (issue 5); a lease file that cannot be read
	 * must stop the start rather than silently drop the fencing. */
	if (lease_init(state_dir) < 0) {
		log_err("%s/leases: cannot load the image leases; not starting", state_dir);
		return 1;
	}

	/* NFS: command-line flags override the config's nfs section.
	 * --nfs-listen replaces nfs.listen; the older --nfs-bind/--nfs-port
	 * alone replace it with their single endpoint. */
	if (nfs_cli_set & 1) strcpy(cfg.nfs.bind_addr, nfs_cli.bind_addr);
	if (nfs_cli_set & 2) cfg.nfs.nfs_port = nfs_cli.nfs_port;
	if (nfs_cli_set & 64) {
		memcpy(cfg.nfs.listen, nfs_cli.listen, sizeof(cfg.nfs.listen));
		cfg.nfs.nlisten = nfs_cli.nlisten;
		cfg.nfs.nfs_port = nfs_cli.nfs_port;
	} else if (nfs_cli_set & 3) {
		cfg.nfs.nlisten = 0;
	}
	if (nfs_cli_set & 128)
		strcpy(cfg.nfs.portmap_addr, nfs_cli.portmap_addr);
	else if (nfs_cli_set & 32)
		cfg.nfs.portmap_addr[0] = '\0';
	if (nfs_cli_set & 4) cfg.nfs.mount_port = nfs_cli.mount_port;
	if (nfs_cli_set & 8) cfg.nfs.nlm_port = nfs_cli.nlm_port;
	if (nfs_cli_set & 16) cfg.nfs.portmap_port = nfs_cli.portmap_port;
	if (nfs_cli_set & 32) cfg.nfs.portmap = nfs_cli.portmap;
	if (nfs_flag)
		cfg.nfs_enabled = true;
	snprintf(cfg.nfs.state_dir, sizeof(cfg.nfs.state_dir), "%s", state_dir);
	nfs_on = cfg.nfs_enabled;

	/* Block the signals in every thread; this thread takes them with sigwait.
	 * SIGPIPE is ignored: a vanished peer shows up as -EPIPE on its send. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (reg_init() < 0 || iscsi_init(&cfg.iscsi, cfg.portals, cfg.nportals) < 0) {
		log_err("initialisation failed");
		return 1;
	}
	if (workpool_init(0) < 0) {
		log_err("cannot start the helper thread pool");
		return 1;
	}
	if (config_apply(&cfg, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return 1;
	}
	for (int i = 0; i < n_nfs_exports; i++) {
		if (nfsgw_add_export_line(nfs_exports[i], err, sizeof(err)) < 0) {
			log_err("--nfs-export '%s': %s", nfs_exports[i], err);
			return 1;
		}
	}
	if (nfs_on && nfsgw_init(&cfg.nfs) < 0) {
		log_err("NFS gateway initialisation failed");
		return 1;
	}

	struct reactor_thread *rts = calloc((size_t)threads, sizeof(*rts));
	if (!rts)
		return 1;
	for (int i = 0; i < threads; i++) {
		struct reactor_thread *rt = &rts[i];
		int ret = reactor_init(&rt->r, i, RING_ENTRIES);
		if (ret < 0) {
			log_err("io_uring setup failed: %s", strerror(-ret));
			return 1;
		}
		rt->listen_fds = calloc((size_t)cfg.nportals, sizeof(int));
		for (int p = 0; p < cfg.nportals; p++) {
			int fd = open_listener(&cfg.portals[p]);
			if (fd < 0) {
				log_err("cannot listen on portal %s: %s", cfg.portals[p].text, strerror(-fd));
				return 1;
			}
			rt->listen_fds[rt->nlisten++] = fd;
		}
		if (nfs_on) {
			rt->nnfs = nfsgw_open_sockets(&cfg.nfs, rt->nfs_fds, NFSGW_MAX_FDS);
			if (rt->nnfs < 0) {
				log_err("NFS gateway: cannot open its sockets: %s", strerror(-rt->nnfs));
				return 1;
			}
		}
		atomic_init(&rt->idle, -1);
		reactor_post(&rt->r, listen_on_reactor, rt);
	}

	{
		const char *texts[CONFIG_MAX_PORTALS];
		for (int p = 0; p < cfg.nportals; p++)
			texts[p] = cfg.portals[p].text;
		reg_set_sys_info(RINGSTOR_VERSION, threads, texts, cfg.nportals);
	}
	if (control_start(control_path) < 0)
		return 1;
	/* Prometheus text endpoint: off unless asked for (control plane thread). */
	if (!prometheus && cfg.prometheus[0])
		prometheus = cfg.prometheus;
	if (prometheus && *prometheus && stats_prometheus_start(prometheus) < 0)
		return 1;

	/* nochdir: relative paths in the config (LUN files, state) are relative
	 * to where ringstord was started, also for a later SIGHUP reload. */
	if (!foreground && daemon(1, 0) < 0) {
		log_err("daemon: %s", strerror(errno));
		return 1;
	}

	for (int i = 0; i < threads; i++) {
		if (pthread_create(&rts[i].tid, NULL, reactor_main, &rts[i]) != 0) {
			log_err("cannot start reactor thread %d", i);
			return 1;
		}
	}
	for (int p = 0; p < cfg.nportals; p++)
		log_notice("iSCSI portal %s", cfg.portals[p].text);
	if (nfs_on) {
		struct nfsgw_endpoint one = { .port = cfg.nfs.nfs_port };
		int n = cfg.nfs.nlisten ? cfg.nfs.nlisten : 1;
		snprintf(one.addr, sizeof(one.addr), "%s", cfg.nfs.bind_addr);
		for (int i = 0; i < n; i++) {
			char t[80];
			nfsgw_endpoint_str(cfg.nfs.nlisten ? &cfg.nfs.listen[i] : &one, t, sizeof(t));
			log_notice("NFS %s (MOUNT port %u, portmapper %s)", t, cfg.nfs.mount_port,
				   !cfg.nfs.portmap ? "off" : nfsgw_builtin_portmap() ? "built in" : "rpcbind");
		}
	}
	log_notice("ringstord %s ready: %d reactor%s, control socket %s", RINGSTOR_VERSION,
		   threads, threads > 1 ? "s" : "", control_path);
	/* systemd Type=notify (sd_notify(3)): the portals are listening and the
	 * reactors run, so initiators can connect now. */
	rs_notifyf("READY=1\nSTATUS=%d portal%s, %d reactor%s", cfg.nportals,
		   cfg.nportals > 1 ? "s" : "", threads, threads > 1 ? "s" : "");

	for (;;) {
		int sig;
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			/* Reload (conf/reload.h): the running state follows the
			 * file; untouched sessions keep running.  What the command
			 * line overrides is not the file's to change. */
			long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
			struct reload_opts ro = {
				.path = config_path,
				.started = &cfg,
				.nfs_running = nfs_on,
				.cli_exports = nfs_exports,
				.ncli_exports = n_nfs_exports,
			};
			struct reload_result rr;
			char status[200];

			if (ncli_portals)
				ro.flags |= RELOAD_CLI_PORTALS;
			if (nfs_flag)
				ro.flags |= RELOAD_CLI_NFS;
			if (log_level && log_level != cfg.log_level)
				ro.flags |= RELOAD_CLI_LOG_LEVEL;
			if (threads != (cfg.threads > 0 ? cfg.threads : (int)(ncpu > 0 ? ncpu : 1)))
				ro.flags |= RELOAD_CLI_THREADS;
			if (control_path != cfg.control_socket && strcmp(control_path, DEFAULT_CONTROL))
				ro.flags |= RELOAD_CLI_CONTROL;
			if (state_dir != cfg.state_dir && strcmp(state_dir, DEFAULT_STATE_DIR))
				ro.flags |= RELOAD_CLI_STATE_DIR;
			rs_notify_reloading("reloading the configuration");
			if (reload_config(&ro, &rr, err, sizeof(err)) < 0)
				snprintf(status, sizeof(status), "reload failed, configuration unchanged: %.120s",
					 err);
			else
				snprintf(status, sizeof(status), "reloaded: %d change%s, %d deferred, %d failed",
					 rr.applied, rr.applied == 1 ? "" : "s", rr.deferred, rr.failed);
			rs_notify_ready(status);
			continue;
		}
		log_notice("signal %d: shutting down", sig);
		rs_notify_stopping("shutting down");
		break;
	}

	/* Clean shutdown: stop accepting, let in-flight commands (writes above
	 * all) finish on their reactors, then stop the loops and close stores. */
	control_stop();
	stats_prometheus_stop();
	for (int i = 0; i < threads; i++)
		reactor_post(&rts[i].r, shutdown_on_reactor, &rts[i]);
	for (int waited = 0; waited < 10000; waited += 20) {
		int idle = 0;
		for (int i = 0; i < threads; i++) {
			atomic_store(&rts[i].idle, -1);
			reactor_post(&rts[i].r, poll_idle, &rts[i]);
		}
		sleep_ms(20);
		for (int i = 0; i < threads; i++)
			idle += atomic_load(&rts[i].idle) == 1;
		if (idle == threads)
			break;
	}
	for (int i = 0; i < threads; i++)
		reactor_post(&rts[i].r, stop_on_reactor, &rts[i]);
	for (int i = 0; i < threads; i++) {
		pthread_join(rts[i].tid, NULL);
		for (int p = 0; p < rts[i].nlisten; p++)
			close(rts[i].listen_fds[p]);
		for (int p = 0; p < rts[i].nnfs; p++)
			close(rts[i].nfs_fds[p]);
		reactor_fini(&rts[i].r);
		free(rts[i].listen_fds);
	}
	if (nfs_on)
		nfsgw_shutdown();
	nfs_exports_clear();
	workpool_shutdown();
	reg_shutdown();
	config_free(&cfg);
	free(rts);
	unlink(control_path);
	log_notice("stopped");
	return 0;
}
