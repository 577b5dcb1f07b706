/* backend.c - backing store registry and the helpers shared by every backend.
 *
 * The backends themselves live in one file each (file.c, null.c), in the
 * spirit of LIO's target_core_{file,iblock}.c: each exports a const ops
 * table and this file is the only place that knows the list.
 */
#include "backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct bstore_ops *const bstore_types[] = {
	&bstore_file_ops,
	&bstore_null_ops,
};

const struct bstore_ops *bstore_find_ops(const char *type)
{
	size_t i;

	if (!type)
		return NULL;
	/* "block" is accepted as an alias: the file backend handles both. */
	if (strcmp(type, "block") == 0 || strcmp(type, "blockdev") == 0)
		return &bstore_file_ops;
	for (i = 0; i < sizeof(bstore_types) / sizeof(bstore_types[0]); i++)
		if (strcmp(bstore_types[i]->name, type) == 0)
			return bstore_types[i];
	return NULL;
}

int bstore_open(const char *type, const char *path, const struct bstore_params *p,
		struct bstore **out)
{
	const struct bstore_ops *ops = bstore_find_ops(type);
	struct bstore_params def = { .block_size = 512 };
	struct bstore *bs;
	int ret;

	*out = NULL;
	if (!ops)
		return -EINVAL;
	if (!p)
		p = &def;
	/* SBC-3 allows any logical block length; we only advertise the two that
	 * every initiator (and O_DIRECT on common file systems) copes with. */
	if (p->block_size != 0 && p->block_size != 512 && p->block_size != 4096)
		return -EINVAL;

	bs = calloc(1, sizeof(*bs));
	if (!bs)
		return -ENOMEM;
	bs->ops = ops;
	bs->fd = -1;
	bs->block_size = p->block_size ? p->block_size : 512;
	bs->direct = p->direct;
	bs->readonly = p->readonly;
	if (path) {
		bs->path = strdup(path);
		if (!bs->path) {
			free(bs);
			return -ENOMEM;
		}
	}
	ret = ops->open(bs, p);
	if (ret < 0) {
		free(bs->path);
		free(bs);
		return ret;
	}
	*out = bs;
	return 0;
}

void bstore_close(struct bstore *bs)
{
	if (!bs)
		return;
	if (bs->ops && bs->ops->close)
		bs->ops->close(bs);
	free(bs->path);
	free(bs);
}

void *bstore_buf_alloc(size_t len)
{
	void *p = NULL;

	/* Round up so that O_DIRECT never sees a buffer that ends mid-page and
	 * so that len == 0 still returns a unique, freeable pointer. */
	len = (len + 4095) & ~(size_t)4095;
	if (len == 0)
		len = 4096;
	if (posix_memalign(&p, 4096, len) != 0)
		return NULL;
	return p;
}

void bstore_buf_free(void *p)
{
	free(p);
}
