"""The seeds' producer/consumer workload in asyncio, for comparison with
bench/pc: 1,000,000 integers through asyncio.Queue(maxsize=1024) to 4
consumers, with join. Prints items per second."""
import asyncio
import time

ITEMS = 1_000_000
CONSUMERS = 4


async def main() -> None:
    q: asyncio.Queue[int] = asyncio.Queue(maxsize=1024)
    total = 0

    async def consumer() -> None:
        nonlocal total
        while True:
            total += await q.get()
            q.task_done()

    workers = [asyncio.create_task(consumer()) for _ in range(CONSUMERS)]
    start = time.perf_counter()
    for i in range(ITEMS):
        await q.put(i)
    await q.join()
    elapsed = time.perf_counter() - start
    for w in workers:
        w.cancel()
    assert total == ITEMS * (ITEMS - 1) // 2
    print(f"asyncio: {ITEMS / elapsed:,.0f} items/s")


asyncio.run(main())
