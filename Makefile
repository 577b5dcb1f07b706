# ringstor - top-level build.  `make run` and `make check` are the README contract.
#   make            build ringstord + ringstoradm (build/)
#   make run        install missing packages, build, run the demo in the foreground
#   make check      install missing packages, build, run unit + integration tests
#   make SAN=1 ...  ASan+UBSan build in build-san/
#   make CC=clang   any C11 compiler
#   make install    DESTDIR/PREFIX honoured

CC      ?= cc
PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/ringstor
SYSTEMDUNITDIR ?= /lib/systemd/system
SCDOC   ?= scdoc
DESTDIR ?=

ifeq ($(SAN),1)
BUILD   ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     ?= -O1 -g
else
BUILD   ?= build
SANFLAGS =
OPT     ?= -O2 -g -D_FORTIFY_SOURCE=2
endif

WARN    = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
          -Wno-unused-parameter -Wno-missing-field-initializers
CFLAGS  += -std=gnu11 $(OPT) $(WARN) $(SANFLAGS) -D_GNU_SOURCE -pthread -MMD -MP -I.
LDFLAGS += $(SANFLAGS) -pthread
LIBS    = -luring -lconfig -lcrypto -lnfs

LIB_SRCS = $(filter-out core/main.c,$(wildcard core/*.c target/*.c backend/*.c conf/*.c nfsgw/*.c))
LIB_OBJS = $(LIB_SRCS:%.c=$(BUILD)/%.o)
COMP_SRCS = $(filter-out companion/main.c,$(wildcard companion/*.c))
COMP_OBJS = $(COMP_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

DAEMON = $(BUILD)/ringstord
ADM    = $(BUILD)/ringstoradm
MIGRATE = $(BUILD)/ringstor-migrate
# Manual pages: one scdoc(5) source per page in doc/man/, e.g.
# doc/man/ringstord.8.scd -> $(BUILD)/man/ringstord.8
MAN_SRCS  = $(wildcard doc/man/*.scd)
MAN_PAGES = $(MAN_SRCS:doc/man/%.scd=$(BUILD)/man/%)

.PHONY: all deps run check unit integration install clean sanitize man deb
all: $(DAEMON) $(ADM) $(MIGRATE)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libringstor.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(DAEMON): $(BUILD)/core/main.o $(BUILD)/libringstor.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(ADM): $(BUILD)/cli/ringstoradm.o $(BUILD)/libringstor.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# The host-side companion: its own archive (it never links the daemon's code).
$(BUILD)/libcompanion.a: $(COMP_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(MIGRATE): $(BUILD)/companion/main.o $(BUILD)/libcompanion.a
	$(CC) $(LDFLAGS) -o $@ $^ -liscsi -lnfs -lcrypto -lconfig

$(BUILD)/tests/test_companion_%: $(BUILD)/tests/unit/test_companion_%.o $(BUILD)/libcompanion.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -liscsi -lnfs -lcrypto -lconfig -lcmocka

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libringstor.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(BUILD)/man/%: doc/man/%.scd
	@mkdir -p $(dir $@)
	$(SCDOC) < $< > $@.tmp && mv $@.tmp $@

man: $(MAN_PAGES)

# Debian packages ringstor + ringstor-host in $(BUILD)/deb (packaging/build-deb.sh).
deb:
	@packaging/build-deb.sh

deps:
	@scripts/install-deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p var/state var/export
	@echo "== ringstord demo: iSCSI on 127.0.0.1:3260, NFSv3 on 127.0.0.1:2049 (Ctrl-C stops)."
	@echo "   From another shell:"
	@echo "     iscsi-ls -s iscsi://127.0.0.1:3260/"
	@echo "     iscsi-inq iscsi://127.0.0.1:3260/iqn.2026-11.io.ringstor:demo/1"
	@echo "     qemu-img info iscsi://127.0.0.1:3260/iqn.2026-11.io.ringstor:demo/1"
	@echo "     nfs-ls nfs://127.0.0.1$(CURDIR)/var/export"
	@echo "     qemu-img create -f raw nfs://127.0.0.1$(CURDIR)/var/export/disk.raw 64M"
	@echo "     $(ADM) -C var/ringstord.sock --lld iscsi --mode target --op show"
	@echo "     $(ADM) -C var/ringstord.sock --lld nfs --mode export --op show"
	$(DAEMON) -f -c conf/demo.conf -C var/ringstord.sock --state-dir var/state \
		--nfs-listen 127.0.0.1:2049 --nfs-export '$(CURDIR)/var/export 127.0.0.1(rw,insecure,no_root_squash)' 

unit: $(UNIT_BINS)
	@tests/run-unit.sh $(UNIT_BINS)

# libnfs raw-API test client used by tests/integration/test_nfs_raw.sh.  No
# UBSan for this client (ASan stays): libnfs 4.0's XDR decoder hands out
# 4-byte aligned list nodes (exportnode, entry3...); that is the library's.
$(BUILD)/nfs_raw_test: tests/nfs_raw_test.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS) $(if $(SANFLAGS),-fno-sanitize=undefined) -lnfs

integration: all $(BUILD)/nfs_raw_test
	@BUILD=$(BUILD) tests/run-integration.sh

check: deps
	@$(MAKE) --no-print-directory all unit
	@$(MAKE) --no-print-directory -C bench selftest
	@$(MAKE) --no-print-directory integration

# Benchmarks against tgt and nfs-ganesha (issue 6; see bench/README.md).
.PHONY: bench bench-quick
bench:
	@$(MAKE) --no-print-directory -C bench bench BUILD=$(BUILD)
bench-quick:
	@$(MAKE) --no-print-directory -C bench bench-quick BUILD=$(BUILD)

sanitize:
	@$(MAKE) --no-print-directory SAN=1 all unit integration

# The configuration is installed only if absent (never overwrite an admin's
# file); mode 0600 because it holds CHAP secrets.
install: all man
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/ringstor $(DESTDIR)$(DOCDIR)/examples \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0755 $(DAEMON) $(ADM) $(MIGRATE) $(DESTDIR)$(SBINDIR)/
	install -m 0644 conf/ringstor.conf.example $(DESTDIR)$(DOCDIR)/examples/ringstor.conf.example
	install -d $(DESTDIR)$(PREFIX)/share/doc/ringstor-host/examples
	install -m 0644 companion/migrate.conf.example \
		$(DESTDIR)$(PREFIX)/share/doc/ringstor-host/examples/migrate.conf.example
	test -e $(DESTDIR)$(SYSCONFDIR)/ringstor/ringstor.conf || \
		install -m 0600 packaging/ringstor.conf $(DESTDIR)$(SYSCONFDIR)/ringstor/ringstor.conf
	install -m 0644 $(filter %.5,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(filter %.8,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man8/
	sed -e 's|/usr/sbin/|$(SBINDIR)/|g' -e 's|/etc/ringstor/|$(SYSCONFDIR)/ringstor/|g' \
		packaging/systemd/ringstord.service > $(DESTDIR)$(SYSTEMDUNITDIR)/ringstord.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/ringstord.service

clean:
	rm -rf build build-san

-include $(LIB_OBJS:.o=.d) $(COMP_OBJS:.o=.d) $(BUILD)/companion/main.d $(BUILD)/core/main.d $(BUILD)/cli/ringstoradm.d $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%.d)
.SECONDARY:
