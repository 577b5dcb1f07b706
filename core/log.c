/* log.c - see log.h */
#include "log.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

enum rs_log_level rs_log_level_cur = RS_LOG_NOTICE;
static bool log_to_stderr = true;

void rs_log_init(const char *ident, bool to_stderr, enum rs_log_level level)
{
	log_to_stderr = to_stderr;
	rs_log_level_cur = level;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

int rs_log_parse_level(const char *s)
{
	static const struct { const char *name; int lvl; } names[] = {
		{ "error", RS_LOG_ERR }, { "err", RS_LOG_ERR }, { "warning", RS_LOG_WARN },
		{ "warn", RS_LOG_WARN }, { "notice", RS_LOG_NOTICE }, { "info", RS_LOG_INFO },
		{ "debug", RS_LOG_DEBUG },
	};
	if (!s)
		return -1;
	if (s[0] >= '3' && s[0] <= '7' && s[1] == '\0')
		return s[0] - '0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcasecmp(s, names[i].name))
			return names[i].lvl;
	return -1;
}

void rs_log(enum rs_log_level lvl, const char *fmt, ...)
{
	static const char *tags[] = { "", "", "", "error", "warning", "notice", "info", "debug" };
	va_list ap;

	if (lvl > rs_log_level_cur)
		return;
	va_start(ap, fmt);
	if (log_to_stderr) {
		char buf[1024];
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		fprintf(stderr, "%02d:%02d:%02d.%03ld ringstord %s: %s\n", tm.tm_hour, tm.tm_min,
			tm.tm_sec, ts.tv_nsec / 1000000, tags[lvl], buf);
	} else {
		vsyslog(lvl, fmt, ap);
	}
	va_end(ap);
}
