"""seed local foods

Revision ID: das0003
Revises: das0002
Create Date: 2026-11-29 06:00:00

Nutrients per 100 g edible portion of common Indonesian local foods. Sources are named per item; see
dashat/foods/PROVENANCE.md: the values were transcribed without the table at hand and must be checked against
TKPI 2017 by a nutritionist before menus are used for anything but planning.
"""

from collections.abc import Sequence
import uuid

import sqlalchemy as sa
from alembic import op

revision: str = "das0003"
down_revision: str | None = "das0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TKPI = "TKPI 2017 (Tabel Komposisi Pangan Indonesia, Kemenkes RI)"
DKBM = "DKBM (Daftar Komposisi Bahan Makanan, predecessor of TKPI)"

# code, name, group, energy kcal, protein g, fat g, carbohydrate g, iron mg, source
FOODS = [
    ("beras_giling", "Beras giling, mentah", "serealia", 357, 8.4, 1.7, 77.1, 1.8, TKPI),
    ("nasi_putih", "Nasi putih", "serealia", 180, 3.0, 0.3, 39.8, 0.4, TKPI),
    ("jagung_kuning_pipil", "Jagung kuning, pipil kering", "serealia", 355, 9.2, 3.9, 73.7, 2.4, DKBM),
    ("singkong", "Singkong, segar", "umbi", 154, 1.0, 0.3, 36.8, 1.1, TKPI),
    ("ubi_jalar_merah", "Ubi jalar merah, segar", "umbi", 123, 1.8, 0.7, 27.9, 0.7, DKBM),
    ("kentang", "Kentang, segar", "umbi", 62, 2.1, 0.2, 13.5, 0.7, TKPI),
    ("telur_ayam_ras", "Telur ayam ras, segar", "telur", 154, 12.4, 10.8, 0.7, 2.7, TKPI),
    ("daging_ayam", "Daging ayam, segar", "daging", 298, 18.2, 25.0, 0.0, 1.5, TKPI),
    ("hati_ayam", "Hati ayam, segar", "jeroan", 261, 27.4, 16.1, 1.6, 15.8, TKPI),
    ("daging_sapi", "Daging sapi, segar", "daging", 201, 18.8, 14.0, 0.0, 2.8, TKPI),
    ("ikan_kembung", "Ikan kembung, segar", "ikan", 112, 21.3, 3.4, 2.2, 1.5, TKPI),
    ("ikan_lele", "Ikan lele, segar", "ikan", 84, 14.8, 2.3, 0.0, 1.6, TKPI),
    ("ikan_mujair", "Ikan mujair, segar", "ikan", 89, 18.7, 1.0, 0.0, 1.5, DKBM),
    ("ikan_bandeng", "Ikan bandeng, segar", "ikan", 129, 20.0, 4.8, 0.0, 2.0, DKBM),
    ("ikan_teri_kering", "Ikan teri, kering tawar", "ikan", 170, 33.4, 3.0, 0.0, 3.9, DKBM),
    ("tempe", "Tempe kedelai murni, segar", "kacang", 201, 20.8, 8.8, 13.5, 4.0, TKPI),
    ("tahu", "Tahu, mentah", "kacang", 80, 10.9, 4.7, 0.8, 3.4, TKPI),
    ("kacang_hijau", "Kacang hijau, kering", "kacang", 323, 22.9, 1.5, 56.8, 7.5, TKPI),
    ("kacang_merah", "Kacang merah, kering", "kacang", 314, 22.1, 1.1, 56.2, 10.3, DKBM),
    ("daun_kelor", "Daun kelor, segar", "sayur", 92, 5.1, 1.6, 14.3, 6.0, TKPI),
    ("bayam", "Bayam, segar", "sayur", 16, 0.9, 0.4, 2.9, 3.5, TKPI),
    ("kangkung", "Kangkung, segar", "sayur", 28, 3.4, 0.7, 3.9, 2.3, TKPI),
    ("daun_singkong", "Daun singkong, segar", "sayur", 50, 6.2, 1.1, 7.1, 1.3, TKPI),
    ("wortel", "Wortel, segar", "sayur", 36, 1.0, 0.6, 7.9, 1.0, TKPI),
    ("labu_kuning", "Labu kuning, segar", "sayur", 29, 1.1, 0.3, 6.6, 0.5, DKBM),
    ("tomat", "Tomat masak, segar", "sayur", 20, 1.0, 0.3, 4.2, 0.5, DKBM),
    ("buncis", "Buncis, segar", "sayur", 35, 2.4, 0.2, 7.7, 1.1, DKBM),
    ("pisang_ambon", "Pisang ambon", "buah", 99, 1.2, 0.2, 25.8, 0.5, DKBM),
    ("pepaya", "Pepaya", "buah", 46, 0.5, 0.0, 12.2, 1.7, DKBM),
    ("jeruk_manis", "Jeruk manis", "buah", 45, 0.9, 0.2, 11.2, 0.4, DKBM),
    ("susu_sapi", "Susu sapi, segar", "susu", 61, 3.2, 3.5, 4.3, 1.7, DKBM),
    ("minyak_kelapa_sawit", "Minyak kelapa sawit", "minyak", 902, 0.0, 100.0, 0.0, 0.0, DKBM),
    ("gula_pasir", "Gula pasir", "gula", 364, 0.0, 0.0, 94.0, 0.1, DKBM),
]

# Stable ids, so the same seed gives the same ids in every database (menus can refer to them).
NAMESPACE = uuid.UUID("6b2f1c9e-3d0a-4b8e-9f57-d4a5c0e1b2a3")


def upgrade() -> None:
    food = sa.table(
        "food",
        sa.column("id", sa.Uuid()),
        sa.column("code", sa.Text()),
        sa.column("name", sa.Text()),
        sa.column("food_group", sa.Text()),
        sa.column("energy_kcal", sa.Float()),
        sa.column("protein_g", sa.Float()),
        sa.column("fat_g", sa.Float()),
        sa.column("carbohydrate_g", sa.Float()),
        sa.column("iron_mg", sa.Float()),
        sa.column("source", sa.Text()),
        sa.column("seeded", sa.Boolean()),
    )
    op.bulk_insert(
        food,
        [
            {
                "id": uuid.uuid5(NAMESPACE, code),
                "code": code,
                "name": name,
                "food_group": group,
                "energy_kcal": kcal,
                "protein_g": protein,
                "fat_g": fat,
                "carbohydrate_g": carb,
                "iron_mg": iron,
                "source": f"{source}: '{name}', per 100 g edible portion; transcribed, to be verified",
                "seeded": True,
            }
            for code, name, group, kcal, protein, fat, carb, iron, source in FOODS
        ],
    )


def downgrade() -> None:
    op.execute("DELETE FROM food WHERE seeded")
