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
DESTDIR ?=

ifeq ($(SAN),1)
BUILD   ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     ?= -O1 -g
else
BUILD   ?= build
SANFLAGS =
OPT     ?= -O2 -g
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

.PHONY: all deps run check unit integration install clean sanitize
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
	$(CC) $(LDFLAGS) -o $@ $^ -liscsi -lnfs -lcrypto

$(BUILD)/tests/test_companion_%: $(BUILD)/tests/unit/test_companion_%.o $(BUILD)/libcompanion.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -liscsi -lnfs -lcrypto -lcmocka

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libringstor.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

deps:
	@scripts/install-deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p var/state
	@echo "== ringstord demo on 127.0.0.1:3260 (Ctrl-C stops). From another shell:"
	@echo "     iscsi-ls -s iscsi://127.0.0.1:3260/"
	@echo "     iscsi-inq iscsi://127.0.0.1:3260/iqn.2026-11.io.ringstor:demo/1"
	@echo "     qemu-img info iscsi://127.0.0.1:3260/iqn.2026-11.io.ringstor:demo/1"
	@echo "     $(ADM) -C var/ringstord.sock --lld iscsi --mode target --op show"
	$(DAEMON) -f -c conf/demo.conf -C var/ringstord.sock --state-dir var/state

unit: $(UNIT_BINS)
	@tests/run-unit.sh $(UNIT_BINS)

integration: all
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

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/ringstor
	install -m 0755 $(DAEMON) $(ADM) $(MIGRATE) $(DESTDIR)$(SBINDIR)/
	install -m 0644 conf/ringstor.conf.example $(DESTDIR)$(SYSCONFDIR)/ringstor/ringstor.conf.example

clean:
	rm -rf build build-san

-include $(LIB_OBJS:.o=.d) $(COMP_OBJS:.o=.d) $(BUILD)/companion/main.d $(BUILD)/core/main.d $(BUILD)/cli/ringstoradm.d $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%.d)
.SECONDARY:
