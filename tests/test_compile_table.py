"""mvl.compile --table's file: one cell per (config, topology); --update replaces the
cells it recompiles and keeps the rest, and lists every command that made the table."""

from mvl.compile import table


def cell(config, topology, memory_gib, fits=True, microbatches=1):
    return {
        "config": config,
        "topology": topology,
        "mesh": {"data": 8, "fsdp": 1, "tensor": 1},
        "remat": "full",
        "microbatches": microbatches,
        "scan_layers": True,
        "per_chip_bytes": {"total": memory_gib * 2**30},
        "hbm_bytes": 80 * 2**30,
        "fits": fits,
        "global_batch": 32768,
        "xla_flops_per_step": None,
        "xla_counts_loop_bodies_once": True,
        "analytic_flops_per_step": {"global": 5e15},
        "roofline_step_s": 0.6,
        "roofline_bound": "compute",
        "schedule_s_at_roofline": 3600.0,
        "total_steps": 100,
        "compile_s": 12.0,
    }


def test_update_keeps_other_cells_and_lists_every_command(tmp_path):
    out = str(tmp_path / "scale.md")
    first = table.Saved()
    first.commands.append(table.stamped("python -m mvl.compile --table A B"))
    first.put(cell("configs/b.py:paper", "h100:1x1x8", 90.0, fits=False))
    first.put(cell("configs/a.py:paper", "h100:1x1x8", 40.0))
    first.put(cell("configs/a.py:paper", "v5e:16x16", 9.0))
    first.write(out)

    again = table.Saved.read(out)
    again.commands.append(table.stamped("python -m mvl.compile --table B --update"))
    again.put(cell("configs/b.py:paper", "h100:1x1x8", 60.0, microbatches=2))
    again.put({"config": "configs/c.py:paper", "topology": "h100:1x1x8", "failed": "Boom: x"})
    again.write(out)

    text = open(out).read()
    rows = [line for line in text.splitlines() if line.startswith("| configs/")]
    assert [r.split(" | ")[0:2] for r in rows] == [
        ["| configs/a.py:paper", "h100:1x1x8"],
        ["| configs/b.py:paper", "h100:1x1x8"],
        ["| configs/c.py:paper", "h100:1x1x8"],
        ["| configs/a.py:paper", "v5e:16x16"],
    ]
    assert "60.00 GiB" in rows[1] and "2 microbatches" in rows[1] and "**no**" not in rows[1]
    assert "failed: Boom: x" in rows[2]
    assert "--table A B" in text and "--table B --update" in text
    assert len(table.Saved.read(out).cells) == 4
