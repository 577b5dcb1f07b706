/* log.h - leveled logging: stderr in the foreground, syslog otherwise. */
#ifndef RS_LOG_H
#define RS_LOG_H
#include <stdbool.h>

enum rs_log_level { RS_LOG_ERR = 3, RS_LOG_WARN = 4, RS_LOG_NOTICE = 5, RS_LOG_INFO = 6, RS_LOG_DEBUG = 7 };

void rs_log_init(const char *ident, bool to_stderr, enum rs_log_level level);
/* Parses "error|warning|notice|info|debug" (or a digit 3-7); -1 if unknown. */
int rs_log_parse_level(const char *s);
extern enum rs_log_level rs_log_level_cur;
void rs_log(enum rs_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)    rs_log(RS_LOG_ERR, __VA_ARGS__)
#define log_warn(...)   rs_log(RS_LOG_WARN, __VA_ARGS__)
#define log_notice(...) rs_log(RS_LOG_NOTICE, __VA_ARGS__)
#define log_info(...)   rs_log(RS_LOG_INFO, __VA_ARGS__)
#define log_debug(...)  do { if (rs_log_level_cur >= RS_LOG_DEBUG) rs_log(RS_LOG_DEBUG, __VA_ARGS__); } while (0)
#endif
