/* tests/unit/test_px_gen.c - proxy/daemon/gen.c: configuration generations.
 *
 * The rules that keep a worker from reading a freed configuration: a
 * worker's reference on its current generation, the per-worker use count
 * of queries and chases, and the moment an old generation's reference is
 * dropped (with the last query that used it, never before). The test
 * holds a reference of its own on each generation, so the count it reads
 * afterwards is never a freed one; ASAN/LSan check the final frees.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/unit/helpers.h"
#include "proxy/daemon/gen.h"
#include "proxy/engine/worker.h"

static struct px_gen *gen_new(unsigned n_workers)
{
	struct px_gen *g = calloc(1, sizeof(*g));
	assert_non_null(g);
	atomic_init(&g->refs, 1); /* the test's own */
	g->n_use = n_workers;
	g->use = aligned_alloc(_Alignof(struct px_gen_use), n_workers * sizeof(*g->use));
	assert_non_null(g->use);
	memset(g->use, 0, n_workers * sizeof(*g->use));
	return g;
}

static unsigned refs(struct px_gen *g)
{
	return atomic_load(&g->refs);
}

static void test_gen_use_counts_are_on_their_own_cache_lines(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct px_gen_use), 64);
	assert_int_equal(_Alignof(struct px_gen_use), 64);
}

static void test_gen_old_generation_lives_until_its_last_query(void **state)
{
	struct px_worker w;
	struct px_gen *g1 = gen_new(2), *g2 = gen_new(2);

	(void)state;
	memset(&w, 0, sizeof(w));
	w.idx = 1;
	/* The worker's reference on its first generation. */
	px_gen_ref(g1);
	px_gen_adopt(&w, g1);
	assert_ptr_equal(w.gen, g1);
	assert_int_equal(refs(g1), 2);

	struct px_gen *t1 = px_gen_hold(&w, w.gen), *t2 = px_gen_hold(&w, w.gen);
	assert_ptr_equal(t1, g1);
	assert_int_equal(g1->use[1].n, 2);
	assert_int_equal(g1->use[0].n, 0); /* another worker's count is untouched */

	/* Reload: main posts g2 with a reference for the worker. */
	px_gen_ref(g2);
	px_gen_adopt(&w, g2);
	assert_ptr_equal(w.gen, g2);
	assert_ptr_equal(w.cfg, g2->cfg);
	assert_int_equal(refs(g1), 2); /* two queries still use it */

	/* A query started now takes the new one. */
	struct px_gen *t3 = px_gen_hold(&w, w.gen);
	assert_ptr_equal(t3, g2);

	px_gen_release(&w, t1);
	assert_int_equal(refs(g1), 2);
	px_gen_release(&w, t2);
	assert_int_equal(refs(g1), 1); /* the worker let go with the last one */

	/* Releasing a query of the current generation keeps its reference. */
	px_gen_release(&w, t3);
	assert_int_equal(refs(g2), 2);

	px_gen_unref(g1); /* the test's: frees g1 */
	px_gen_unref(w.gen);
	px_gen_unref(g2);
}

static void test_gen_adopt_drops_an_unused_old_generation_at_once(void **state)
{
	struct px_worker w;
	struct px_gen *g1 = gen_new(1), *g2 = gen_new(1), *g3 = gen_new(1);

	(void)state;
	memset(&w, 0, sizeof(w));
	px_gen_ref(g1);
	px_gen_adopt(&w, g1);
	px_gen_ref(g2);
	px_gen_adopt(&w, g2);
	assert_int_equal(refs(g1), 1);
	/* Two reloads in a row while a query runs under g2. */
	struct px_gen *t = px_gen_hold(&w, w.gen);
	px_gen_ref(g3);
	px_gen_adopt(&w, g3);
	assert_int_equal(refs(g2), 2);
	px_gen_release(&w, t);
	assert_int_equal(refs(g2), 1);
	px_gen_unref(g1);
	px_gen_unref(g2);
	px_gen_unref(w.gen);
	px_gen_unref(g3);
}

static void test_gen_chase_holds_the_generation_of_its_query(void **state)
{
	struct px_worker w;
	struct px_gen *g1 = gen_new(1), *g2 = gen_new(1);

	(void)state;
	memset(&w, 0, sizeof(w));
	px_gen_ref(g1);
	px_gen_adopt(&w, g1);
	struct px_gen *q = px_gen_hold(&w, w.gen);
	px_gen_ref(g2);
	px_gen_adopt(&w, g2);
	/* A chase started for that query after the reload holds g1 too. */
	struct px_gen *chase = px_gen_hold(&w, q);
	assert_ptr_equal(chase, g1);
	px_gen_release(&w, q);
	assert_int_equal(refs(g1), 2); /* the chase still reads it */
	px_gen_release(&w, chase);
	assert_int_equal(refs(g1), 1);
	px_gen_unref(g1);
	px_gen_unref(w.gen);
	px_gen_unref(g2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_gen_use_counts_are_on_their_own_cache_lines),
	        cmocka_unit_test(test_gen_old_generation_lives_until_its_last_query),
	        cmocka_unit_test(test_gen_adopt_drops_an_unused_old_generation_at_once),
	        cmocka_unit_test(test_gen_chase_holds_the_generation_of_its_query),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
